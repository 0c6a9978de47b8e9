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

#[test]
fn the_mqtt_session_is_logic_without_io_or_clock() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/edge/mqtt/session.rs");
    let code = std::fs::read_to_string(&path).unwrap();
    for name in crates_named(&code) {
        assert!(
            !EDGE_CRATES.contains(&name),
            "session.rs uses {name}: the session takes inputs and time as data"
        );
    }
    for clock in ["now_ms()", "Instant", "SystemTime", "rand::", "thread_rng"] {
        assert!(
            !code.contains(clock),
            "session.rs reads the clock or chance ({clock}): pass time in as data"
        );
    }
}

/// Every metric family the exporter registers has a row in the README's
/// metric tables, and every row names a registered family: the tables
/// cannot drift from the code.
#[test]
fn every_metric_is_in_the_readme_and_every_row_is_a_metric() {
    use mqtt_disconnect_exporter::core::metrics::{register_process_collector, Metrics};
    use mqtt_disconnect_exporter::edge::http::metrics::WebMetrics;
    use mqtt_disconnect_exporter::edge::mqtt::metrics::MqttMetrics;
    let registry = prometheus::Registry::new();
    register_process_collector(&registry).unwrap();
    let mut metrics = Metrics::new(&registry).unwrap();
    // the per-client families have no series until a client is listed
    use mqtt_disconnect_exporter::core::flapping::{FlapKind, FlappingClient};
    use mqtt_disconnect_exporter::core::reasons::Reason;
    use mqtt_disconnect_exporter::core::top::{TopClient, TopNetwork, TopReason};
    metrics.set_top_flapping(&[FlappingClient {
        clientid: "c".into(),
        kind: FlapKind::Takeover,
        count: 3,
        window_seconds: 60.0,
        peers: Vec::new(),
        first_seen: 0,
        last_seen: 0,
    }]);
    metrics.set_top(
        &[TopReason {
            reason: Reason::Normal,
            devices: 1,
            saturated: false,
            clients: vec![TopClient {
                clientid: "c".into(),
                count: 3,
                error: 0,
                peers: Vec::new(),
                last_seen: 0,
            }],
            networks: vec![TopNetwork {
                network: "192.0.2.0/24".into(),
                count: 3,
                error: 0,
                clients: Vec::new(),
                last_seen: 0,
            }],
            nodes: Vec::new(),
        }],
        5,
        5,
    );
    metrics.disconnected(Reason::Normal, Some("emqx@10.0.0.1"), 32);
    WebMetrics::new(&registry).unwrap();
    MqttMetrics::new(&registry, &["a/#".to_string()]).unwrap();
    mqtt_disconnect_exporter::edge::ingest::IngestMetrics::new(&registry).unwrap();
    mqtt_disconnect_exporter::edge::file::FileMetrics::new(&registry, "/var/log/x.log").unwrap();
    let mut served: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_string())
        .map(|n| {
            if n.starts_with("process_") {
                "process_*".to_string()
            } else {
                n
            }
        })
        .collect();
    served.dedup();
    served.sort();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut documented: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("mqtt_") || *n == "process_*")
        .filter(|n| !n.contains(' ') && !n.contains('{'))
        .map(String::from)
        .collect();
    documented.sort();
    documented.dedup();
    assert_eq!(served.len(), 39, "{served:?}");
    assert_eq!(served, documented);
}

/// The CLI sits on top: flags are read into each part's settings in
/// `src/cli/`, and no module below it (the core, the edges, the tools,
/// the configuration) names the CLI.
#[test]
fn nothing_below_the_cli_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = [src.join("main.rs"), src.join("lib.rs")];
    let mut checked = 0;
    for file in files {
        if file.starts_with(src.join("cli")) || top.contains(&file) {
            continue;
        }
        checked += 1;
        let code = std::fs::read_to_string(&file).unwrap();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            assert!(
                !line.contains("crate::cli") && !line.contains("cli::"),
                "{} names the CLI: {line}\npass it its own settings from src/cli/settings.rs instead",
                file.display()
            );
        }
    }
    assert!(checked >= 40, "{checked} files checked");
}
