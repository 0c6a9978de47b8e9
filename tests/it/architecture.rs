//! The layout is the architecture: the core stays pure.

use std::path::Path;

/// Crates of the edges; the core must not name them.
const EDGE_CRATES: [&str; 4] = ["tokio", "rumqttc", "rumqttd", "hyper"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every word that stands before a `::` in `code`: the first segment of each
/// path names the crate, so an edge crate used anywhere shows up.
fn crates_named(code: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for (i, _) in code.match_indices("::") {
        let start = code[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        names.push(&code[start..i]);
    }
    names
}

#[test]
fn the_core_imports_no_edge_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in crates_named(&code) {
            assert!(
                !EDGE_CRATES.contains(&name),
                "{} uses {name}: the core must stay free of I/O crates",
                file.display()
            );
        }
    }
}

#[test]
fn the_check_sees_an_edge_crate() {
    assert_eq!(
        crates_named("use tokio::sync::watch;\nlet x = hyper::Request::new(());"),
        vec!["tokio", "sync", "hyper", "Request"]
    );
}
