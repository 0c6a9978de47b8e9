//! A source written outside the crate, in this one file: it implements
//! `edge::source::Source` and is listed as `SourceSettings::Plugged`, with
//! no flag and no change to the exporter. Two of them replay captured
//! logs (`tests/fixtures/logs/`, one of JSON lines and one of Mosquitto's
//! own log) into one exporter run in process; every count is exact, each
//! has its own health line in `/-/ready`, and its own metric.

use std::sync::Arc;

use mqtt_disconnect_exporter::core::clock::now_ms;
use mqtt_disconnect_exporter::core::metrics::registered;
use mqtt_disconnect_exporter::edge::source::{
    Context, Plugged, Source, SourceSettings, StartError, Started,
};
use prometheus::{IntCounter, Opts};

use crate::common::in_process::InProcess;
use crate::common::{fixture, get};

/// Replays a captured log's lines once, then is ready until shutdown.
struct Replay {
    file: &'static str,
}

impl Source for Replay {
    fn name(&self) -> String {
        format!("replay {}", self.file)
    }

    fn start(&self, cx: Context<'_>) -> Result<Started, StartError> {
        let failed = |e: prometheus::Error| StartError::Plugged {
            name: self.name(),
            why: e.to_string(),
        };
        let replayed = IntCounter::with_opts(
            Opts::new("test_replayed_lines_total", "Lines replayed.")
                .const_label("file", self.file),
        )
        .map_err(failed)?;
        let replayed = registered(cx.registry, replayed).map_err(failed)?;
        let text = String::from_utf8(fixture(&format!("logs/{}", self.file))).unwrap_or_default();
        let Context {
            inlet,
            health,
            mut shutdown,
            ..
        } = cx;
        let task = async move {
            let lines: Vec<&str> = text.lines().collect();
            {
                let mut turn = inlet.turn();
                for line in &lines {
                    turn.deliver_line(line.as_bytes(), now_ms());
                    replayed.inc();
                }
            }
            health.set(true, format!("replayed {} lines", lines.len()));
            shutdown.recv().await;
            health.set(false, "stopped");
        };
        Ok(Started {
            task: Box::pin(task),
            routes: None,
        })
    }
}

#[test]
fn a_source_from_outside_is_one_file_and_counts_exactly() {
    let sources = ["events.jsonl", "mosquitto.log"]
        .map(|file| SourceSettings::Plugged(Plugged(Arc::new(Replay { file }))));
    let exporter = InProcess::with_sources(&["--web.listen-address", "127.0.0.1:0"], &sources);
    exporter.wait_ready();
    // what `analyze` reports for the two files, added up
    for (reason, n) in [
        ("takeovered", 8.0),
        ("keepalive_timeout", 6.0),
        ("tcp_closed", 4.0),
        ("normal", 1.0),
        ("not_authenticated", 1.0),
        ("other", 1.0),
        ("kicked", 0.0),
    ] {
        let series = format!(r#"mqtt_client_disconnects_total{{reason="{reason}"}}"#);
        assert_eq!(exporter.value(&series), Some(n), "{series}");
    }
    assert_eq!(exporter.value("mqtt_client_connects_total"), Some(9.0));
    assert_eq!(
        exporter.value(r#"test_replayed_lines_total{file="events.jsonl"}"#),
        Some(19.0)
    );
    assert_eq!(
        exporter.value(r#"test_replayed_lines_total{file="mosquitto.log"}"#),
        Some(21.0)
    );
    let (code, body) = get(exporter.web_port, "/-/ready").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        "Ready.\n- replay events.jsonl: replayed 19 lines.\n\
         - replay mosquitto.log: replayed 21 lines.\n"
    );
}
