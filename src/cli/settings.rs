//! The flags read into the settings of each part ([`crate::config`]):
//! the files they name are read and checked now (the password, the CA,
//! the client certificate and key, the web config), so an unusable file
//! fails at start and not at the first reconnect, and combinations of
//! flags are checked. This is the only place that knows both the flags
//! and the settings.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    AnalyzeArgs, BrokerArgs, DemoArgs, EventArgs, FileArgs, RulesArgs, ServeArgs, SimulateArgs,
    TlsArgs, WebArgs,
};
use crate::config::{invalid, Config, ConfigError};
use crate::core::flapping::Settings;
use crate::core::network::Prefixes;
use crate::core::pipeline::PipelineSettings;
use crate::core::reasons::Aliases;
use crate::core::top::TopSettings;
use crate::edge::file::Settings as FileSettings;
use crate::edge::files;
use crate::edge::ingest::tokens::Tokens;
use crate::edge::ingest::Settings as IngestSettings;
use crate::edge::mqtt::broker_tls::{self, BrokerTls};
use crate::edge::mqtt::settings::{
    default_client_id, read_password, BrokerConfig, Secret, Transport,
};
use crate::edge::mqtt::Settings as MqttSettings;
use crate::edge::source::SourceSettings;
use crate::tools::rules::{self, RulesOptions};
use crate::tools::sim::demo::DemoOptions;
use crate::tools::sim::pace::Plan;
use crate::tools::sim::post::PostConfig;
use crate::tools::sim::publish::Target;

impl ServeArgs {
    /// Reads the files `args` name and checks their combinations;
    /// `password_env` is MQTT_EXPORTER_MQTT_PASSWORD and `hostname` the
    /// default client ID's suffix (both passed in for tests).
    pub fn config(
        &self,
        password_env: Option<String>,
        hostname: &str,
    ) -> Result<Config, ConfigError> {
        let args = self;
        let broker = args
            .broker
            .settings(&args.tls, password_env, &default_client_id(hostname))?;
        let sub = &args.subscription;
        // the old spelling's variable is still read, after the new one
        let token_file = args.ingest.token_file.clone().or_else(|| {
            std::env::var_os("MQTT_EXPORTER_WEBHOOK_TOKEN_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let ingest = token_file.map(|token_file| IngestSettings {
            token_file,
            max_body_size: args.ingest.max_body_size,
            body_grace: args.ingest.body_grace,
        });
        if let Some(ingest) = &ingest {
            // read now: a file without a token fails at start
            Tokens::load(&ingest.token_file)?;
        }
        let mqtt = MqttSettings {
            broker,
            topics: sub.topics.clone(),
            qos: sub.qos,
            clean_session: sub.clean_session,
            session_expiry: sub.session_expiry,
            max_packet_size: sub.max_packet_size,
            protocol: sub.protocol,
        };
        let pipeline = args.events.settings()?;
        let mut sources: Vec<SourceSettings> = Vec::new();
        if !sub.disable {
            sources.push(SourceSettings::Mqtt(Box::new(mqtt)));
        }
        sources.extend(ingest.map(SourceSettings::Ingest));
        sources.extend(args.file.settings(pipeline.max_payload_bytes)?);
        if sources.is_empty() {
            return Err(invalid(
                "--mqtt.disable",
                "true",
                "with no MQTT source, --ingest.token-file (HTTP ingestion) or --file.path must give another",
            ));
        }
        Ok(Config {
            sources,
            web: args.web.settings()?,
            pipeline,
            log_level: args.log.level,
            log_format: args.log.format,
        })
    }
}

impl FileArgs {
    /// One file source per `--file.path`, each given once; lines longer
    /// than `max_line` (`--event.max-payload-size`) count as too large.
    pub fn settings(&self, max_line: usize) -> Result<Vec<SourceSettings>, ConfigError> {
        let mut seen = Vec::new();
        for path in &self.paths {
            if path.as_os_str().is_empty() {
                return Err(invalid("--file.path", "", "a path is needed"));
            }
            if seen.contains(&path) {
                return Err(invalid(
                    "--file.path",
                    path.display(),
                    "given twice: each file is followed once",
                ));
            }
            seen.push(path);
        }
        Ok(self
            .paths
            .iter()
            .map(|path| {
                SourceSettings::File(FileSettings {
                    path: path.clone(),
                    from_start: self.from_start,
                    max_line,
                })
            })
            .collect())
    }
}

impl BrokerArgs {
    /// The connection `broker` and `tls` describe, with `default_client_id`
    /// when no `--mqtt.client-id` was given.
    pub fn settings(
        &self,
        tls: &TlsArgs,
        password_env: Option<String>,
        default_client_id: &str,
    ) -> Result<BrokerConfig, ConfigError> {
        let broker = self;
        if broker.url.has_credentials {
            return Err(invalid(
                "--mqtt.url",
                "<redacted>",
                "credentials in the URL are not accepted; use --mqtt.username and --mqtt.password-file",
            ));
        }
        let transport = transport(broker, tls)?;
        let password = match &broker.password_file {
            Some(path) => Some(read_password(path)?),
            None => password_env.map(Secret),
        };
        if password.is_some() && broker.username.is_none() {
            return Err(invalid(
                "--mqtt.username",
                "",
                "a password was given without a username",
            ));
        }
        Ok(BrokerConfig {
            host: broker.url.host.clone(),
            port: broker.url.port,
            transport,
            client_id: broker
                .client_id
                .clone()
                .unwrap_or_else(|| default_client_id.to_string()),
            username: broker.username.clone(),
            password,
            password_file: broker.password_file.clone(),
            keepalive: broker.keepalive,
        })
    }
}

impl WebArgs {
    /// The web flags, with the web config file checked.
    pub fn settings(&self) -> Result<crate::edge::http::Settings, ConfigError> {
        let args = self;
        if let Some(path) = &args.config_file {
            crate::edge::http::web_config::load(path)
                .map_err(|e| files::content("--web.config.file", path, e))?;
        }
        Ok(crate::edge::http::Settings {
            listen: args.listen_addresses.clone(),
            telemetry_path: args.telemetry_path.clone(),
            web_config: args.config_file.clone(),
        })
    }
}

/// The pipeline's settings from the event and flapping flags; conflicting
/// `--reason.alias` spellings are refused.
impl EventArgs {
    pub fn settings(&self) -> Result<PipelineSettings, ConfigError> {
        let args = self;
        let aliases = Aliases::new(args.reason_aliases.iter().flat_map(|l| l.0.iter().cloned()))
            .map_err(|why| invalid("--reason.alias", "", why))?;
        Ok(PipelineSettings {
            aliases,
            max_payload_bytes: args.max_payload_size,
            top_flapping: args.top_flapping,
            flapping: Settings {
                takeover_window_ms: millis(args.takeover_window),
                takeover_threshold: args.takeover_threshold,
                reconnect_window_ms: millis(args.reconnect_window),
                reconnect_threshold: args.reconnect_threshold,
                max_tracked: args.max_tracked,
                max_peers: args.max_peers,
                max_skew_ms: millis(args.max_clock_skew),
            },
            top_clients: args.top_clients,
            top: TopSettings {
                window_ms: millis(args.top_window),
                capacity: TopSettings::capacity_for(args.top_clients),
            },
            top_networks: args.top_networks,
            max_connected: args.max_connected,
            max_nodes: args.max_nodes,
            prefixes: Prefixes {
                v4: args.network_prefix_v4,
                v6: args.network_prefix_v6,
            },
        })
    }
}

/// TLS flags go with mqtts:// only; a client certificate needs its key;
/// without a CA file the system trust store must have one.
fn transport(broker: &BrokerArgs, tls: &TlsArgs) -> Result<Transport, ConfigError> {
    if !broker.url.tls {
        if tls.ca_file.is_some()
            || tls.cert_file.is_some()
            || tls.key_file.is_some()
            || tls.server_name.is_some()
            || tls.insecure_skip_verify
        {
            return Err(invalid(
                "--mqtt.url",
                format!("mqtt://{}:{}", broker.url.host, broker.url.port),
                "TLS flags were given, use mqtts://",
            ));
        }
        return Ok(Transport::Tcp);
    }
    let client_files = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "--mqtt.key-file",
                "",
                "needed with --mqtt.cert-file",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "--mqtt.cert-file",
                "",
                "needed with --mqtt.key-file",
            ))
        }
    };
    let tls = BrokerTls {
        ca_file: tls.ca_file.clone(),
        client_files,
        server_name: tls.server_name.clone(),
        insecure_skip_verify: tls.insecure_skip_verify,
    };
    // the same reading of the files as at every connect, now, so an
    // unusable file fails at start and not at the first reconnect
    broker_tls::client_config(&tls)?;
    Ok(Transport::Tls(tls))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl RulesArgs {
    /// The options `rules` renders with.
    pub fn options(&self) -> RulesOptions {
        let args = self;
        RulesOptions {
            selector: args.selector.clone(),
            runbook_url: args.runbook_url.clone(),
            dashboard_url: args.dashboard_url.clone(),
            exporter_scheme: args.exporter_scheme.clone(),
            critical: args.severity_critical.clone(),
            warning: args.severity_warning.clone(),
            info: args.severity_info.clone(),
            thresholds: rules::Thresholds {
                spike_factor: args.spike_factor,
                keepalive_timeout_min: args.keepalive_timeout_min,
                too_many_connection_min: args.too_many_connection_min,
                keep_firing_for: args.keep_firing_for.as_secs(),
            },
            divisor: 1,
        }
    }
}

impl SimulateArgs {
    /// What the simulated fleet does, wherever it is sent.
    pub fn plan(&self) -> Plan {
        Plan {
            scenario: self.scenario,
            rate: self.rate,
            clients: self.clients,
            duration: self.duration,
            seed: self.seed,
        }
    }

    /// Where `simulate` publishes: the broker reached as the exporter
    /// reaches it (credentials and TLS included). `simulate --ingest`
    /// never reads it.
    pub fn target(&self, password_env: Option<String>) -> Result<Target, ConfigError> {
        let default_id = format!("mqtt-disconnect-exporter-simulator-{}", std::process::id());
        Ok(Target {
            broker: self.broker.settings(&self.tls, password_env, &default_id)?,
            topic_prefix: self.topic_prefix.trim_end_matches('/').to_string(),
        })
    }
}

impl SimulateArgs {
    /// Where `simulate --ingest` posts, and with which token; `None`
    /// without `--ingest`.
    pub fn post(&self) -> Result<Option<PostConfig>, ConfigError> {
        let Some(raw) = &self.ingest else {
            return Ok(None);
        };
        let url = url::Url::parse(raw).map_err(|e| invalid("--ingest", raw, e))?;
        if url.scheme() != "http" {
            return Err(invalid(
                "--ingest",
                raw,
                "only http:// is posted to (put a TLS proxy in front for https)",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(invalid("--ingest", raw, "no host")),
        };
        let token = match &self.ingest_token_file {
            Some(path) => {
                let bytes = files::read("--ingest.token-file", path)?;
                let text = String::from_utf8_lossy(&bytes);
                let first = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .ok_or_else(|| files::content("--ingest.token-file", path, "no token in it"))?;
                Some(first.to_string())
            }
            None => None,
        };
        Ok(Some(PostConfig {
            host,
            port: url.port_or_known_default().unwrap_or(80),
            token,
            format: self.body_format,
            connections: self.ingest_connections,
        }))
    }
}

impl DemoArgs {
    /// What `demo` runs: the exporter's event, web and log settings.
    pub fn options(&self) -> Result<DemoOptions, ConfigError> {
        Ok(DemoOptions {
            clients: self.clients,
            rate: self.rate,
            web: self.web.settings()?,
            pipeline: self.events.settings()?,
            log_level: self.log.level,
            log_format: self.log.format,
        })
    }
}

impl AnalyzeArgs {
    /// The pipeline `analyze` replays the file through.
    pub fn settings(&self) -> Result<PipelineSettings, ConfigError> {
        self.events.settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, ListenAddress, LogFormat, LogLevel};
    use clap::Parser;

    fn config_of(
        a: &ServeArgs,
        password: Option<String>,
        host: &str,
    ) -> Result<Config, ConfigError> {
        a.config(password, host)
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["mqtt-disconnect-exporter"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().serve
    }

    /// The error of parsing or of validating `extra`, as printed.
    fn err(extra: &[&str]) -> String {
        let mut argv = vec!["mqtt-disconnect-exporter"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv) {
            Err(e) => e.to_string(),
            Ok(cli) => cli.serve.config(None, "host").unwrap_err().to_string(),
        }
    }

    #[test]
    fn the_old_webhook_spellings_still_parse_as_ingest() {
        let new = args(&["--ingest.token-file", "t", "--ingest.max-body-size", "99"]);
        let old = args(&["--webhook.token-file", "t", "--webhook.max-body-size", "99"]);
        assert_eq!(new.ingest.token_file, Some(PathBuf::from("t")));
        assert_eq!(old.ingest.token_file, new.ingest.token_file);
        assert_eq!(
            (old.ingest.max_body_size, new.ingest.max_body_size),
            (99, 99)
        );
        let sim = |flags: [&str; 6]| {
            let mut argv = vec!["mqtt-disconnect-exporter", "simulate"];
            argv.extend(flags);
            match Cli::try_parse_from(argv).unwrap().command {
                Some(crate::cli::Command::Simulate(s)) => {
                    (s.ingest, s.ingest_token_file, s.ingest_connections)
                }
                _ => panic!("not simulate"),
            }
        };
        let new = sim([
            "--ingest",
            "http://h:1",
            "--ingest.token-file",
            "t",
            "--ingest.connections",
            "3",
        ]);
        let old = sim([
            "--webhook",
            "http://h:1",
            "--webhook.token-file",
            "t",
            "--webhook.connections",
            "3",
        ]);
        assert_eq!(
            new,
            (Some("http://h:1".into()), Some(PathBuf::from("t")), 3)
        );
        assert_eq!(old, new);
        // the old spellings are not in the help
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(!help.contains("webhook.token-file"), "{help}");
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = config_of(&args(&[]), None, "node-7").unwrap();
        assert_eq!(c.mqtt().unwrap().broker.host, "127.0.0.1");
        assert_eq!(c.mqtt().unwrap().broker.port, 1883);
        assert_eq!(c.mqtt().unwrap().broker.transport, Transport::Tcp);
        assert_eq!(
            c.mqtt().unwrap().broker.client_id,
            "mqtt-disconnect-exporter-node-7"
        );
        assert_eq!(c.mqtt().unwrap().broker.keepalive, Duration::from_secs(30));
        assert_eq!(c.mqtt().unwrap().qos, 1);
        assert!(!c.mqtt().unwrap().clean_session);
        assert_eq!(c.mqtt().unwrap().session_expiry, Duration::from_secs(3600));
        assert_eq!(c.mqtt().unwrap().max_packet_size, 1024 * 1024);
        assert_eq!(c.mqtt().unwrap().topics.len(), 4);
        assert_eq!(
            c.web.listen,
            ["127.0.0.1:9883".parse::<ListenAddress>().unwrap()]
        );
        assert_eq!(c.web.telemetry_path, "/metrics");
        assert_eq!(c.pipeline.flapping, Settings::default());
        assert_eq!(c.pipeline.top_flapping, 20);
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.log_format, LogFormat::Logfmt);
    }

    /// The flags' defaults and the core's `Default`s are one set of
    /// numbers: tests and tools that use `Default` see what users get.
    #[test]
    fn the_flag_defaults_are_the_core_defaults() {
        assert_eq!(
            args(&[]).events.settings().unwrap(),
            PipelineSettings::default()
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert!(err(&["--mqtt.url", "http://x"]).contains("--mqtt.url"));
        assert!(err(&["--mqtt.url", "not a url"]).contains("--mqtt.url"));
        assert!(
            err(&["--mqtt.url", "mqtt://x", "--mqtt.tls-insecure-skip-verify"])
                .contains("use mqtts://")
        );
        let refused = Cli::try_parse_from([
            "mqtt-disconnect-exporter",
            "--mqtt.url",
            "mqtts://x",
            "--mqtt.tls-server-name",
            "not a name!",
        ])
        .unwrap_err()
        .to_string();
        assert!(refused.contains("--mqtt.tls-server-name"), "{refused}");
        assert!(err(&["--flapping.window", "0s"]).contains("must be above zero"));
        assert!(err(&["--flapping.window", "5 minutes"]).contains("--flapping.window"));
        assert!(err(&["--flapping.takeover-threshold", "1"]).contains("self-repair"));
        assert!(err(&["--mqtt.qos", "3"]).contains("--mqtt.qos"));
        assert!(err(&["--mqtt.topic", "a/#/b"]).contains("--mqtt.topic"));
        assert!(err(&["--web.listen-address", "nowhere"]).contains("--web.listen-address"));
        assert!(err(&["--log.format", "xml"]).contains("--log.format"));
        assert!(err(&["--clients.max-tracked", "0"]).contains("--clients.max-tracked"));
        let e = err(&[
            "--mqtt.url",
            "mqtts://x",
            "--mqtt.ca-file",
            "/nonexistent/ca.pem",
        ]);
        assert!(
            e.starts_with("cannot read --mqtt.ca-file file /nonexistent/ca.pem"),
            "{e}"
        );
        let e = err(&["--mqtt.url", "mqtt://user:secret@x"]);
        assert!(e.contains("--mqtt.url"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn every_listen_address_flag_is_kept_in_order() {
        let at = |host: Option<&str>, port| ListenAddress {
            host: host.map(String::from),
            port,
        };
        let c = config_of(
            &args(&[
                "--web.listen-address",
                ":1",
                "--web.listen-address",
                "[::1]:2",
            ]),
            None,
            "n",
        )
        .unwrap();
        assert_eq!(c.web.listen, [at(None, 1), at(Some("::1"), 2)]);
        assert!(err(&["--web.listen-address", "9883"]).contains("--web.listen-address"));
    }

    #[test]
    fn log_levels() {
        let level = |l: &str| args(&["--log.level", l]).log.level;
        assert_eq!(level("warning"), LogLevel::Warn);
        assert_eq!(level("WARN"), LogLevel::Warn);
        assert_eq!(level("debug"), LogLevel::Debug);
        assert!(err(&["--log.level", "bogus"]).contains("--log.level"));
        assert!(err(&["--log.level", "info,rumqttc=off"]).contains("--log.level"));
    }

    #[test]
    fn password_file_and_env() {
        let dir = std::env::temp_dir().join(format!("mde-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let a = args(&[
            "--mqtt.username",
            "u",
            "--mqtt.password-file",
            file.to_str().unwrap(),
        ]);
        let c = a.config(Some("env".into()), "h").unwrap();
        assert_eq!(
            c.mqtt()
                .unwrap()
                .broker
                .password
                .as_ref()
                .map(Secret::expose),
            Some("s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = config_of(&args(&["--mqtt.username", "u"]), Some("env".into()), "h").unwrap();
        assert_eq!(
            c.mqtt()
                .unwrap()
                .broker
                .password
                .as_ref()
                .map(Secret::expose),
            Some("env")
        );
        assert!(config_of(&args(&[]), Some("env".into()), "h").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_subcommand_takes_only_its_flags() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["mqtt-disconnect-exporter"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full)
        };
        // analyze reads a log: nothing about MQTT, TLS or the web
        assert!(parse(&["analyze", "f", "--mqtt.url", "mqtt://x"]).is_err());
        assert!(parse(&["analyze", "f", "--mqtt.ca-file", "ca.pem"]).is_err());
        assert!(parse(&["analyze", "f", "--web.listen-address", ":1"]).is_err());
        assert!(parse(&["analyze", "f", "--flapping.window", "1m"]).is_ok());
        // simulate connects like the exporter, credentials and TLS included
        let cli = parse(&[
            "simulate",
            "--mqtt.url",
            "mqtts://b",
            "--mqtt.username",
            "u",
            "--mqtt.ca-file",
            "ca.pem",
        ])
        .unwrap();
        let Some(Command::Simulate(sim)) = cli.command else {
            panic!("not simulate");
        };
        assert!(sim.broker.url.tls);
        assert_eq!(sim.broker.username.as_deref(), Some("u"));
        assert!(parse(&["simulate", "--mqtt.topic", "x"]).is_err());
        assert!(parse(&["simulate", "--flapping.window", "1m"]).is_err());
        // demo runs its own broker
        assert!(parse(&["demo", "--mqtt.url", "mqtt://x"]).is_err());
        assert!(parse(&["demo", "--web.listen-address", ":1"]).is_ok());
        // the exporter's flags go before no subcommand
        assert!(parse(&["--mqtt.url", "mqtt://x", "demo"]).is_err());
    }

    #[test]
    fn client_id_from_hostname() {
        assert_eq!(
            default_client_id("pod-abc\n"),
            "mqtt-disconnect-exporter-pod-abc"
        );
        assert_eq!(default_client_id(""), "mqtt-disconnect-exporter");
        assert_eq!(default_client_id("a b/c"), "mqtt-disconnect-exporter-abc");
    }
}
