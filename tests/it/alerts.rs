//! The shipped alerting rules, their promtool unit tests and the runbook are
//! generated from the reason table; promtool and amtool accept them.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::rules::{self, Scale, RULES_FILE, RUNBOOK_FILE, TESTS_FILE};
use mqtt_disconnect_exporter::core::reasons::TABLE;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check_generated(file: &str, want: &str) {
    let path = root().join(file);
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{file} differs from what tests/it/common/rules.rs generates; run `UPDATE_GENERATED=1 cargo test --test it alerts`"
    );
}

#[test]
fn generated_files_are_current() {
    check_generated(RULES_FILE, &rules::rules_yaml(&Scale { divisor: 1 }));
    check_generated(TESTS_FILE, &rules::tests_yaml());
    check_generated(RUNBOOK_FILE, &rules::runbook_md());
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (start, end) = ("<!-- alerts:start -->\n", "<!-- alerts:end -->");
    let from = readme.find(start).expect("README lacks alerts:start") + start.len();
    let to = readme.find(end).expect("README lacks alerts:end");
    let want = rules::readme_alerts_table();
    if std::env::var_os("UPDATE_GENERATED").is_some() && readme[from..to] != want {
        let updated = format!("{}{want}{}", &readme[..from], &readme[to..]);
        std::fs::write(root().join("README.md"), updated).unwrap();
    } else {
        assert_eq!(&readme[from..to], want, "README's alert table is stale");
    }
}

#[test]
fn reason_alerts_carry_the_tables_meaning_and_action() {
    let text = std::fs::read_to_string(root().join(RULES_FILE)).unwrap();
    let runbook = std::fs::read_to_string(root().join(RUNBOOK_FILE)).unwrap();
    for reason in [
        "keepalive_timeout",
        "too_many_connection",
        "takeovered",
        "not_authenticated",
    ] {
        let row = TABLE.iter().find(|r| r.id == reason).unwrap();
        let meaning = format!("meaning: {}", serde_json::to_string(row.meaning).unwrap());
        let action = format!("action: {}", serde_json::to_string(row.action).unwrap());
        assert!(text.contains(&meaning), "{reason}: meaning missing");
        assert!(text.contains(&action), "{reason}: action missing");
        assert!(text.contains(&format!("runbook_url: \"docs/runbook.md#{reason}\"")));
        assert!(
            runbook.contains(&format!("## {reason}\n")),
            "runbook lacks {reason}"
        );
        assert!(runbook.contains(&format!("- Recommended action: {}", row.action)));
    }
    for name in [
        "MQTTKeepaliveTimeoutSpike",
        "MQTTTooManyConnections",
        "MQTTClientIdConflictFlapping",
        "MQTTAuthenticationFailures",
        "MQTTAuthorizationFailures",
        "MQTTCredentialsExpired",
        "MQTTClientProtocolErrors",
        "MQTTServerInternalError",
        "MQTTBrokerGoAway",
        "MQTTReconnectFlapping",
        "MQTTExporterDown",
        "MQTTExporterBrokerDisconnected",
        "MQTTExporterNoEvents",
        "MQTTExporterEventErrors",
    ] {
        assert!(
            text.contains(&format!("- alert: {name}\n")),
            "{name} missing"
        );
    }
    assert_eq!(
        text.matches("- alert: MQTTClientProtocolErrors\n").count(),
        5
    );
    assert_eq!(text.matches("severity: page").count(), 2);
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (run scripts/test.sh to install it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_and_unit_tests_pass() {
    let out = run("promtool", &["check", "rules", RULES_FILE]);
    assert!(out.contains("SUCCESS: 18 rules found"), "{out}");
    let out = run("promtool", &["test", "rules", TESTS_FILE]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_can_fail() {
    // The same tests against rules whose page alerts never fire must fail.
    let dir = std::env::temp_dir().join(format!("mde-rules-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let broken = rules::rules_yaml(&Scale { divisor: 1 }).replace(") > 0.5\n", ") > 1e9\n");
    std::fs::write(dir.join("mqtt-disconnect-exporter.rules.yml"), broken).unwrap();
    std::fs::write(dir.join("tests/t.yml"), rules::tests_yaml()).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "tests/t.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alertname: MQTTKeepaliveTimeoutSpike"));
}

#[test]
fn amtool_accepts_the_alertmanager_example() {
    let out = run(
        "amtool",
        &["check-config", "alerts/alertmanager.example.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(out.contains("2 inhibit rules"), "{out}");
    assert!(out.contains("2 receivers"), "{out}");
}

/// rustfmt leaves alone a statement it cannot fit in 100 columns, silently;
/// the generator's long strings are split so rustfmt formats all of it.
#[test]
fn the_rules_generator_fits_rustfmt() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/common/rules.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let long: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.chars().count() > 100)
        .map(|(i, _)| i + 1)
        .collect();
    assert!(long.is_empty(), "lines over 100 columns: {long:?}");
}
