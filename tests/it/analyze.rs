//! `analyze` on captured logs in each input format, through the binary.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn analyze(args: &[&str], stdin: Option<&[u8]>) -> (i32, String) {
    let mut child = Command::new(common::exporter_bin())
        .arg("analyze")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn log(name: &str) -> String {
    common::fixture_path(&format!("logs/{name}"))
        .to_string_lossy()
        .into_owned()
}

fn expected_fleet_report() -> Value {
    json!({
        "events": 19,
        "disconnects": {"takeovered": 5, "keepalive_timeout": 5, "tcp_closed": 3, "other": 1},
        "flapping": [
            {"clientid": "shared-7", "kind": "takeover", "count": 4, "peers": ["10.1.1.1", "10.2.2.2"]}
        ],
        // every event names emqx@10.0.0.1
        "nodes": {"emqx@10.0.0.1": {"takeovered": 5, "keepalive_timeout": 5, "tcp_closed": 3, "other": 1}},
        // dev-0..4 from 10.4.4.0/24, dev-10..12 from 10.5.5.0/24; the
        // other networks have one or two disconnects
        "networks": [
            {"reason": "keepalive_timeout", "key": "10.4.4.0/24", "count": 5},
            {"reason": "tcp_closed", "key": "10.5.5.0/24", "count": 3}
        ],
        "devices": [{"reason": "takeovered", "key": "shared-7", "count": 4}],
        // shared-7's three connections after a connect each lived 44.995 s
        "lifetimes": {"takeovered": {"count": 3, "median_le": 60.0, "buckets": [{"le": 60.0, "count": 3}]}},
        "errors": 0
    })
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn json_lines_mosquitto_sub_and_emqx_sink_give_the_same_report() {
    for name in ["events.jsonl", "mosquitto_sub.txt", "emqx_sink.jsonl"] {
        let (code, out) = analyze(&["--format", "json", &log(name)], None);
        assert_eq!(code, 0, "{name}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report, expected_fleet_report(), "{name}");
    }
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn reads_standard_input() {
    let data = std::fs::read(log("mosquitto_sub.txt")).unwrap();
    let (code, out) = analyze(&["--format", "json", "-"], Some(&data));
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        expected_fleet_report()
    );
}

#[test]
fn malformed_lines_are_counted_and_shown() {
    let (code, out) = analyze(&["--format", "json", &log("malformed.txt")], None);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report,
        json!({
            "events": 2,
            "disconnects": {"keepalive_timeout": 1, "normal": 1},
            "flapping": [],
            "nodes": {"emqx@10.0.0.1": {"keepalive_timeout": 1, "normal": 1}},
            "networks": [],
            "devices": [],
            "lifetimes": {},
            "errors": 4
        })
    );
    let (code, text) = analyze(&[&log("malformed.txt")], None);
    assert_eq!(code, 0);
    assert!(text.contains("Lines not understood: 4\n"), "{text}");
    assert!(text.contains("  invalid_json   3\n"), "{text}");
    assert!(text.contains("  missing_field  1\n"), "{text}");
    assert!(
        text.contains("  line 2: invalid_json: this is not an event\n"),
        "{text}"
    );
    assert!(text.contains("  line 5: missing_field: "), "{text}");
}

/// Where the disconnects came from, in a capture of EMQX 5 rule events
/// (the `client.disconnected` shape of EMQX's rule-engine event docs, with
/// `connected_at`): which node, which network, how long they lived.
#[test]
fn the_report_names_the_node_the_network_and_the_lifetime() {
    let t0 = 1_717_651_184_000i64;
    let mut lines = String::new();
    let mut event = |id: &str, reason: &str, peer: &str, node: &str, lived_s: i64, at: i64| {
        lines.push_str(&format!(
            r#"{{"event":"client.disconnected","clientid":"{id}","reason":"{reason}","peername":"{peer}","node":"{node}","connected_at":{},"disconnected_at":{at},"timestamp":{at}}}"#,
            at - lived_s * 1000
        ));
        lines.push('\n');
    };
    // a site behind 198.51.100.0/24 times out: 40 devices, on node n2,
    // each cut at 350 s (an idle timeout)
    for i in 0..40 {
        event(
            &format!("site-{i}"),
            "keepalive_timeout",
            &format!("198.51.100.{i}:5000"),
            "emqx@n2",
            350,
            t0 + i * 10,
        );
    }
    // a background of one device per network, on both nodes, lived 2 h
    for i in 0..60 {
        let node = if i % 2 == 0 { "emqx@n1" } else { "emqx@n2" };
        event(
            &format!("bg-{i}"),
            "keepalive_timeout",
            &format!("203.0.{i}.7:5000"),
            node,
            7200,
            t0 + 500 + i * 10,
        );
    }
    let (code, out) = analyze(&["--format", "json", "-"], Some(lines.as_bytes()));
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["nodes"],
        json!({"emqx@n1": {"keepalive_timeout": 30}, "emqx@n2": {"keepalive_timeout": 70}})
    );
    assert_eq!(
        report["networks"],
        json!([{"reason": "keepalive_timeout", "key": "198.51.100.0/24", "count": 40}])
    );
    assert_eq!(report["devices"], json!([]));
    assert_eq!(
        report["lifetimes"],
        json!({"keepalive_timeout": {"count": 100, "median_le": 7200.0,
            "buckets": [{"le": 360.0, "count": 40}, {"le": 7200.0, "count": 60}]}})
    );
    let (_, text) = analyze(&["-"], Some(lines.as_bytes()));
    assert!(
        text.contains("  emqx@n2                          70  keepalive_timeout 70\n"),
        "{text}"
    );
    assert!(
        text.contains("  198.51.100.0/24          keepalive_timeout      40\n"),
        "{text}"
    );
    assert!(
        text.contains("  keepalive_timeout               100  median at most 2h; ≤6m 40, ≤2h 60\n"),
        "{text}"
    );
}

#[test]
fn text_report_has_shares_meanings_and_actions() {
    let (code, text) = analyze(&[&log("events.jsonl")], None);
    assert_eq!(code, 0);
    assert!(text.starts_with("Events: 19\n"), "{text}");
    assert!(text.contains("Disconnects by reason: 14\n"), "{text}");
    assert!(
        text.contains("  takeovered                        5   35.7%  The client was disconnected by a device with the same client ID.\n"),
        "{text}"
    );
    assert!(text.contains("action: Client ID conflict."), "{text}");
    assert!(text.contains("Flapping clients: 1\n  takeover  shared-7  events in window: 4  peers: 10.1.1.1, 10.2.2.2\n"), "{text}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(common::exporter_bin())
        .args(["analyze", "/nonexistent/events.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("mqtt-disconnect-exporter: cannot read /nonexistent/events.log:"),
        "{err}"
    );
}

#[test]
fn an_operator_alias_counts_a_new_spelling_under_its_reason() {
    let lines = [
        common::disconnect("a", "Session Kicked").json(),
        common::disconnect("b", "session-kicked").json(),
        common::disconnect("c", "sock_closed").json(),
    ]
    .join("\n");
    let args = [
        "--format",
        "json",
        "--reason.alias",
        "Session Kicked=kicked",
        "-",
    ];
    let (code, out) = analyze(&args, Some(lines.as_bytes()));
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["disconnects"],
        json!({"kicked": 2, "tcp_closed": 1}),
        "{out}"
    );
    // without the alias the same spelling is unknown
    let (_, out) = analyze(&["--format", "json", "-"], Some(lines.as_bytes()));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["disconnects"], json!({"other": 2, "tcp_closed": 1}));
}

#[test]
fn mosquitto_log_files_and_the_journal_give_the_same_verdicts_as_live() {
    let want = json!({
        "events": 12,
        "disconnects": {
            "normal": 1, "takeovered": 3, "tcp_closed": 1,
            "not_authenticated": 1, "keepalive_timeout": 1
        },
        "flapping": [{
            "clientid": "dup", "kind": "takeover", "count": 3,
            // kept per address: the device behind 10.2.2.2 reconnected from
            // another port, and is still one peer
            "peers": ["10.2.2.2", "10.1.1.1"]
        }],
        // Mosquitto's log names no node
        "nodes": {},
        "networks": [],
        "devices": [{"reason": "takeovered", "key": "dup", "count": 3}],
        // joined with each client's own connect line: normal-1 lived 0 s,
        // and each of dup's three connections that were taken over 1 s
        "lifetimes": {
            "normal": {"count": 1, "median_le": 1.0, "buckets": [{"le": 1.0, "count": 1}]},
            "takeovered": {"count": 3, "median_le": 1.0, "buckets": [{"le": 1.0, "count": 3}]}
        },
        "errors": 0
    });
    for name in ["mosquitto.log", "mosquitto_journal.txt"] {
        let (code, out) = analyze(&["--format", "json", &log(name)], None);
        assert_eq!(code, 0, "{name}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report, want, "{name}");
    }
    // a journal without Mosquitto's own time (log_dest syslog)
    let syslog = b"Nov 28 01:02:03 broker mosquitto[812]: Client a disconnected.\n\
        Nov 28 01:02:04 broker mosquitto[812]: New connection from 10.0.0.1:1 on port 1883.\n";
    let (code, out) = analyze(&["--format", "json", "-"], Some(syslog));
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["disconnects"], json!({"normal": 1}));
    assert_eq!(report["errors"], 0);
}
