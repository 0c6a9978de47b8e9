//! The shipped alerting rules, their promtool unit tests and the runbook are
//! the default output of `mqtt-disconnect-exporter rules`; promtool and
//! amtool accept them, and the rules made for another job, runbook host and
//! severity names pass the same promtool tests.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::exporter_bin;
use mqtt_disconnect_exporter::core::reasons::TABLE;
use mqtt_disconnect_exporter::tools::rules::{
    self, promtool, runbook, RulesOptions, DEFAULT_RUNBOOK_URL,
};

const RULES_FILE: &str = "alerts/mqtt-disconnect-exporter.rules.yml";
const TESTS_FILE: &str = "alerts/tests/mqtt-disconnect-exporter.test.yml";
const RUNBOOK_FILE: &str = "docs/runbook.md";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails unless `file` holds `want`; `UPDATE_GENERATED=1` rewrites it.
pub fn check_generated(file: &str, want: &str) {
    let path = root().join(file);
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{file} differs from what `mqtt-disconnect-exporter rules` generates; run `UPDATE_GENERATED=1 cargo test --test it alerts`"
    );
}

/// Runs the binary's `rules` subcommand.
fn rules_cmd(args: &[&str]) -> String {
    let out = common::run_exporter(&[&["rules"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generated_files_are_current() {
    let o = RulesOptions::default();
    check_generated(RULES_FILE, &rules::rules_yaml(&o));
    check_generated(TESTS_FILE, &promtool::tests_yaml(&o));
    check_generated(RUNBOOK_FILE, &runbook::runbook_md(&o));
    common::readme_section_is(
        "alerts",
        &rules::readme_alerts_table(),
        "run `UPDATE_GENERATED=1 cargo test --test it alerts`",
    );
}

#[test]
fn the_rules_subcommand_prints_the_shipped_files() {
    let read = |f: &str| std::fs::read_to_string(root().join(f)).unwrap();
    assert_eq!(rules_cmd(&[]), read(RULES_FILE));
    assert_eq!(rules_cmd(&["--format", "promtool-tests"]), read(TESTS_FILE));
    assert_eq!(rules_cmd(&["--format", "runbook"]), read(RUNBOOK_FILE));
    // the PrometheusRule's spec holds the rule file's groups, indented
    let resource = rules_cmd(&["--format", "prometheusrule"]);
    let (head, spec) = resource.split_once("\nspec:\n").unwrap();
    assert!(head.contains("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"));
    let dedented: String = spec
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let file = read(RULES_FILE);
    assert_eq!(dedented, file[file.find("groups:").unwrap()..]);
}

#[test]
fn pages_are_critical_and_every_alert_is_annotated_to_the_mixin_conventions() {
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
        assert!(text.contains(&format!("runbook_url: \"{DEFAULT_RUNBOOK_URL}#{reason}\"")));
        assert!(
            runbook.contains(&format!("## {reason}\n")),
            "runbook lacks {reason}"
        );
        assert!(runbook.contains(&format!("- Recommended action: {}", row.action)));
    }
    let alerts = text.matches("\n      - alert: ").count();
    assert_eq!(alerts, 19);
    for key in ["summary: ", "description: ", "runbook_url: \"https://"] {
        assert_eq!(
            text.matches(&format!("\n          {key}")).count(),
            alerts,
            "{key}"
        );
    }
    assert_eq!(text.matches("severity: \"critical\"").count(), 2);
    assert_eq!(text.matches("severity: \"warning\"").count(), 16);
    assert_eq!(text.matches("severity: \"info\"").count(), 1);
    assert_eq!(text.matches("severity: ").count(), alerts);
    assert!(text.contains("- alert: MQTTExporterAbsent\n        expr: |\n          absent(up{job=\"mqtt-disconnect-exporter\"})\n"));
    assert!(text.contains(&format!(
        "runbook_url: \"{DEFAULT_RUNBOOK_URL}#mqttreconnectflapping\""
    )));
    assert!(runbook.contains("\n## MQTTReconnectFlapping\n"));
    assert_eq!(text.matches("      - record: ").count(), 2);
    // both pages name their devices from the top metric, nothing else does
    assert_eq!(text.matches("mqtt_client_top_disconnects{").count(), 2);
    assert_eq!(
        text.matches("- alert: MQTTClientProtocolErrors\n").count(),
        5
    );
}

fn run(cmd: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
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
    let out = run("promtool", &["check", "rules", RULES_FILE], root());
    assert!(out.contains("SUCCESS: 21 rules found"), "{out}");
    let out = run("promtool", &["test", "rules", TESTS_FILE], root());
    assert!(out.contains("SUCCESS"), "{out}");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mde-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    dir
}

#[test]
fn rules_for_another_job_runbook_host_and_severities_pass_promtool() {
    let args = [
        "--rules.selector",
        r#"job="mqtt", env="prod""#,
        "--rules.runbook-url",
        "https://runbooks.example.com/mqtt.md",
        "--rules.severity-critical",
        "page",
        "--rules.severity-info",
        "notice",
    ];
    let dir = temp_dir("custom-rules");
    let file = rules_cmd(&args);
    let mut with_tests = args.to_vec();
    with_tests.extend(["--format", "promtool-tests"]);
    std::fs::write(dir.join("mqtt-disconnect-exporter.rules.yml"), &file).unwrap();
    std::fs::write(dir.join("tests/t.yml"), rules_cmd(&with_tests)).unwrap();
    let out = run(
        "promtool",
        &["check", "rules", "mqtt-disconnect-exporter.rules.yml"],
        &dir,
    );
    assert!(out.contains("SUCCESS: 21 rules found"), "{out}");
    let out = run("promtool", &["test", "rules", "tests/t.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(file.contains("up{job=\"mqtt\", env=\"prod\"} == 0"));
    assert!(file.contains("absent(up{job=\"mqtt\", env=\"prod\"})"));
    assert!(!file.contains("mqtt-disconnect-exporter\""));
    assert_eq!(file.matches("severity: \"page\"").count(), 2);
    assert_eq!(file.matches("severity: \"notice\"").count(), 1);
    assert_eq!(
        file.matches("runbook_url: \"https://runbooks.example.com/mqtt.md#")
            .count(),
        19
    );
}

#[test]
fn promtool_unit_tests_can_fail() {
    // The same tests against rules whose keepalive page never fires must fail.
    let dir = temp_dir("broken-rules");
    let o = RulesOptions::default();
    let broken = rules::rules_yaml(&o).replace("} > 0.5\n", "} > 1e9\n");
    assert_ne!(broken, rules::rules_yaml(&o));
    std::fs::write(dir.join("mqtt-disconnect-exporter.rules.yml"), broken).unwrap();
    std::fs::write(dir.join("tests/t.yml"), promtool::tests_yaml(&o)).unwrap();
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
fn bad_rules_options_are_refused_in_one_line() {
    for (flag, value) in [
        ("--rules.selector", "job=mqtt"),
        ("--rules.selector", "{job=\"mqtt\"}"),
        ("--rules.selector", "job=\"a\" env=\"b\""),
        ("--rules.runbook-url", "docs/runbook.md"),
        ("--rules.severity-critical", ""),
    ] {
        let out = Command::new(exporter_bin())
            .args(["rules", flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{flag} {value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn amtool_accepts_the_alertmanager_example() {
    let out = run(
        "amtool",
        &["check-config", "alerts/alertmanager.example.yml"],
        root(),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(out.contains("2 inhibit rules"), "{out}");
    assert!(out.contains("2 receivers"), "{out}");
    let text = std::fs::read_to_string(root().join("alerts/alertmanager.example.yml")).unwrap();
    assert!(text.contains("- matchers: ['severity=\"critical\"']\n      receiver: pager\n"));
}

/// rustfmt leaves alone a statement it cannot fit in 100 columns, silently;
/// the generator's long strings are split so rustfmt formats all of it.
#[test]
fn the_rules_generator_fits_rustfmt() {
    for file in ["mod.rs", "promtool.rs", "runbook.rs"] {
        let path = root().join("src/tools/rules").join(file);
        let text = std::fs::read_to_string(path).unwrap();
        let long: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.chars().count() > 100)
            .map(|(i, _)| i + 1)
            .collect();
        assert!(long.is_empty(), "{file}: lines over 100 columns: {long:?}");
    }
}
