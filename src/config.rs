//! The exporter's validated configuration: the settings of each part,
//! composed. Each edge owns its own settings type ([`crate::edge::mqtt::Settings`],
//! [`WebConfig`] for the HTTP edge, [`PipelineSettings`] for the core);
//! [`Config`] holds one of each, and [`ConfigError`] is how any of them is
//! refused, naming the flag. The flags are read into these types on top,
//! by [`crate::cli`] (`cli/settings.rs`), and nothing here knows the flags'
//! parser.

use std::path::PathBuf;

use crate::core::pipeline::PipelineSettings;
use crate::edge::files::FileError;
use crate::edge::ingest::Settings as IngestSettings;
use crate::edge::listen::ListenAddress;
use crate::edge::mqtt::broker_tls::TlsError;
use crate::edge::mqtt::Settings as MqttSettings;
use crate::edge::process::{LogFormat, LogLevel};

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

/// Everything the HTTP edge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: Vec<ListenAddress>,
    pub telemetry_path: String,
    /// `--web.config.file`, checked at start and re-read by the HTTP edge.
    pub config_file: Option<PathBuf>,
}

/// The validated configuration of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The MQTT source; `None` with `--mqtt.disable`.
    pub mqtt: Option<MqttSettings>,
    /// The HTTP ingest source; on with `--webhook.token-file`.
    pub ingest: Option<IngestSettings>,
    pub web: WebConfig,
    pub pipeline: PipelineSettings,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}
