//! The binary's command line: help, bad flags, the reasons table, the README.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use mqtt_disconnect_exporter::reasons::{markdown_table, TABLE};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::exporter_bin())
        .args(args)
        .env_remove("MQTT_EXPORTER_MQTT_URL")
        .output()
        .unwrap()
}

#[test]
fn help_documents_every_flag_with_env() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--mqtt.url",
        "--mqtt.topic",
        "--mqtt.client-id",
        "--mqtt.username",
        "--mqtt.password-file",
        "--mqtt.ca-file",
        "--mqtt.cert-file",
        "--mqtt.key-file",
        "--mqtt.qos",
        "--mqtt.clean-session",
        "--mqtt.session-expiry",
        "--mqtt.keepalive",
        "--mqtt.max-packet-size",
        "--event.max-payload-size",
        "--flapping.window",
        "--flapping.takeover-threshold",
        "--flapping.window-reconnect",
        "--flapping.reconnect-threshold",
        "--flapping.top-clients",
        "--flapping.max-peers",
        "--clients.max-tracked",
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        let env = format!(
            "MQTT_EXPORTER_{}",
            flag.trim_start_matches('-')
                .replace(['.', '-'], "_")
                .to_uppercase()
        );
        assert!(help.contains(&env), "--help lacks {env}");
    }
    assert!(help.contains("[default: mqtt://127.0.0.1:1883]"));
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    for args in [
        &["--mqtt.url", "http://broker"][..],
        &["--flapping.window", "0s"],
        &[
            "--mqtt.url",
            "mqtts://broker",
            "--mqtt.ca-file",
            "/nonexistent/ca.pem",
        ],
        &["--no-such-flag"],
        &["--mqtt.qos", "abc"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.trim().is_empty(), "{args:?}");
        if args[0] != "--no-such-flag" && args[1] != "abc" {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[test]
fn reasons_subcommand_prints_the_table() {
    let out = run(&["reasons"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, markdown_table());
    // header, separator, one line per row
    assert_eq!(text.lines().count(), 2 + TABLE.len());
    assert!(text.contains("| `keepalive_timeout` | network | warning |"));
}

#[test]
fn readme_reason_table_is_the_generated_one() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = "<!-- reasons:start -->\n";
    let end = "<!-- reasons:end -->";
    let from = readme
        .find(start)
        .expect("README lacks the reasons:start marker")
        + start.len();
    let to = readme
        .find(end)
        .expect("README lacks the reasons:end marker");
    assert_eq!(
        &readme[from..to],
        markdown_table(),
        "README's reason table is stale: regenerate it with `mqtt-disconnect-exporter reasons`"
    );
}
