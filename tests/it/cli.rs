//! The binary's command line: help, bad flags, the reasons table, the README.

use crate::common;

use std::process::Command;

use mqtt_disconnect_exporter::core::reasons::{markdown_table, TABLE};

use common::run_exporter as run;

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
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// Asserts that `args` exit 64 with one line on stderr that names `flag`.
fn refused(args: &[&str], flag: &str) {
    let out = run(args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(flag), "{args:?} should name {flag}: {err}");
}

#[test]
fn every_usage_error_is_one_line() {
    refused(&["--no-such-flag"], "--no-such-flag");
    refused(&["--mqtt.qos", "abc"], "--mqtt.qos");
    for flag in [
        "--flapping.window",
        "--flapping.window-reconnect",
        "--mqtt.keepalive",
        "--mqtt.session-expiry",
        "--event.max-clock-skew",
    ] {
        refused(&[flag, "-5s"], flag);
    }
    refused(&["--mqtt.url", "mqtt://127.0.0.1:0"], "--mqtt.url");
    refused(&["--log.level", "bogus"], "--log.level");
    refused(
        &["--reason.alias", "Session Kicked=bogus"],
        "--reason.alias",
    );
    refused(&["--reason.alias", "no-equals-sign"], "--reason.alias");
    refused(
        &["analyze", "-", "--reason.alias", "x=nope"],
        "--reason.alias",
    );
    for path in ["/", "/-/healthy", "/-/ready", "/api/v1/flapping", "/api"] {
        refused(&["--web.telemetry-path", path], "--web.telemetry-path");
    }
}

#[test]
fn an_address_in_use_is_reported_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&[
        "--web.listen-address",
        &addr,
        "--mqtt.url",
        "mqtt://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("in use").count(), 1, "{err}");
    assert!(err.contains(&addr), "{err}");
}

#[test]
#[ignore = "needs openssl; scripts/test.sh runs it"]
fn unusable_tls_and_password_files_are_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("mde-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a", "b"] {
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ])
            .args(["-subj", &format!("/CN={name}")])
            .current_dir(&dir)
            .output()
            .expect("openssl (run scripts/test.sh to install it)")
            .status;
        assert!(status.success());
    }
    let path = |f: &str| dir.join(f).display().to_string();
    std::fs::write(dir.join("garbage"), "not a certificate\n").unwrap();
    std::fs::write(dir.join("empty-password"), "\n").unwrap();
    std::fs::write(dir.join("huge-password"), "x".repeat(65_536)).unwrap();
    let tls = |ca: &str, cert: &str, key: &str| {
        vec![
            "--mqtt.url".to_string(),
            "mqtts://127.0.0.1:8883".to_string(),
            "--mqtt.ca-file".to_string(),
            path(ca),
            "--mqtt.cert-file".to_string(),
            path(cert),
            "--mqtt.key-file".to_string(),
            path(key),
        ]
    };
    for (args, flag) in [
        (tls("garbage", "a.pem", "a.key"), "--mqtt.ca-file"),
        (tls("a.key", "a.pem", "a.key"), "--mqtt.ca-file"),
        (tls("a.pem", "garbage", "a.key"), "--mqtt.cert-file"),
        (tls("a.pem", "a.pem", "garbage"), "--mqtt.key-file"),
        (tls("a.pem", "a.pem", "b.key"), "--mqtt.key-file"),
    ] {
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), flag);
    }
    for file in ["empty-password", "huge-password"] {
        let p = path(file);
        refused(
            &["--mqtt.username", "u", "--mqtt.password-file", &p],
            "--mqtt.password-file",
        );
    }
    // the matching pair passes the same validation
    use clap::Parser;
    let good = tls("a.pem", "a.pem", "a.key");
    let argv = std::iter::once("mqtt-disconnect-exporter").chain(good.iter().map(String::as_str));
    let cli = mqtt_disconnect_exporter::cli::Cli::try_parse_from(argv).unwrap();
    let config = cli.serve.config(None, "h").unwrap();
    let mqtt_disconnect_exporter::edge::mqtt::settings::Transport::Tls(tls) =
        &config.mqtt().unwrap().broker.transport
    else {
        panic!("not TLS: {:?}", config.mqtt().unwrap().broker.transport)
    };
    assert!(tls.client_files.is_some());
    assert!(tls.ca_file.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reasons_subcommand_prints_the_table() {
    let out = run(&["reasons"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, markdown_table());
    // header, separator, one line per row
    assert_eq!(text.lines().count(), 2 + TABLE.len());
    assert!(text.contains("| `keepalive_timeout` | network | critical |"));
}

#[test]
fn readme_reason_table_is_the_generated_one() {
    common::readme_section_is(
        "reasons",
        &markdown_table(),
        "regenerate it with `mqtt-disconnect-exporter reasons`",
    );
}

#[test]
fn readme_flag_table_is_the_generated_one() {
    common::readme_section_is(
        "flags",
        &mqtt_disconnect_exporter::cli::markdown_flags(),
        "run UPDATE_GENERATED=1 cargo test --test it readme_flag_table",
    );
}

#[test]
fn reason_aliases_that_cannot_work_are_refused_and_a_comma_can_be_written() {
    // one spelling, two reasons: refused, not last-wins
    refused(
        &[
            "--reason.alias",
            "foo=kicked",
            "--reason.alias",
            "FOO=normal",
        ],
        "--reason.alias",
    );
    refused(
        &["--reason.alias", "foo=kicked,Foo=normal"],
        "--reason.alias",
    );
    // a numeric code is mapped by the MQTT 5 table, never by an alias
    refused(&["--reason.alias", "142=go_away"], "--reason.alias");
    refused(&["--reason.alias", "0x8E=go_away"], "--reason.alias");
    // a comma inside RAW is written \, : analyze counts "a,b" as kicked
    let dir = std::env::temp_dir().join(format!("mde-alias-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("events.jsonl");
    std::fs::write(
        &log,
        "{\"event\":\"client.disconnected\",\"clientid\":\"d1\",\"reason\":\"a,b\"}\n\
         {\"event\":\"client.disconnected\",\"clientid\":\"d2\",\"reason\":\"c\"}\n",
    )
    .unwrap();
    let out = crate::common::run_exporter(&[
        "analyze",
        "--format",
        "json",
        "--reason.alias",
        r"a\,b=kicked,c=go_away",
        log.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let count = |reason: &str| report["disconnects"][reason].as_u64();
    assert_eq!(
        (count("kicked"), count("go_away"), count("other")),
        (Some(1), Some(1), None),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
