//! Reading the files that flags name (passwords, certificates, keys, the
//! web config): one error type, [`FileError`], that names the flag and the
//! file, so a bad file fails at start with one line that says which.

use std::path::{Path, PathBuf};

/// A file a flag names cannot be read, or its content cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {flag} file {}: {why}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("invalid {flag} file {}: {why}", path.display())]
    Content {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// The bytes of the file `flag` names.
pub fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|e| FileError::Read {
        flag,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// The file `flag` names was read, but `why` it cannot be used.
pub fn content(flag: &'static str, path: &Path, why: impl ToString) -> FileError {
    FileError::Content {
        flag,
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}
