//! The exporter's validated configuration: the settings of each part,
//! composed. Each part owns its own settings type (each source's, in
//! [`SourceSettings`]; [`http::Settings`](crate::edge::http::Settings) for
//! the web side; [`PipelineSettings`] for the core); [`Config`] holds the
//! list of sources and one of each other, and [`ConfigError`] is how any
//! of them is refused, naming the flag. The flags are read into these
//! types on top, by [`crate::cli`] (`cli/settings.rs`), and nothing here
//! knows the flags' parser.

use crate::core::pipeline::PipelineSettings;
use crate::edge::files::FileError;
use crate::edge::mqtt::broker_tls::TlsError;
use crate::edge::process::{LogFormat, LogLevel};
use crate::edge::source::SourceSettings;

/// Why the configuration was refused: a flag's value, or a file a flag
/// names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {flag}: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error(transparent)]
    File(#[from] FileError),
}

/// `flag`'s `value` is refused, `why`.
pub fn invalid(flag: &'static str, value: impl ToString, why: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        why: why.to_string(),
    }
}

impl From<TlsError> for ConfigError {
    fn from(e: TlsError) -> ConfigError {
        match e {
            TlsError::File(e) => ConfigError::File(e),
            TlsError::Setting { flag, why } => invalid(flag, "", why),
        }
    }
}

/// The validated configuration of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// One entry per enabled source, never empty: MQTT unless
    /// `--mqtt.disable`, HTTP ingest with `--ingest.token-file`, a file per
    /// `--file.path`.
    pub sources: Vec<SourceSettings>,
    pub web: crate::edge::http::Settings,
    pub pipeline: PipelineSettings,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}

impl Config {
    /// The MQTT source's settings, if it is on.
    pub fn mqtt(&self) -> Option<&crate::edge::mqtt::Settings> {
        self.sources.iter().find_map(|s| match s {
            SourceSettings::Mqtt(settings) => Some(&**settings),
            _ => None,
        })
    }
}
