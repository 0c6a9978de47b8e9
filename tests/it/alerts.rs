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
#[ignore = "needs amtool and promtool; scripts/test.sh runs it"]
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
    assert_eq!(text.matches("      - record: ").count(), 4);
    // every reason alert holds through a lull; the groups run every 30 s
    assert_eq!(text.matches("        keep_firing_for: 3m\n").count(), 12);
    assert_eq!(text.matches("    interval: 30s\n").count(), 2);
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

/// Runs `promtool test rules` on each file (name, text) at once, each in
/// a directory with `rules` as `../mqtt-disconnect-exporter.rules.yml`;
/// returns each run's output and whether it passed.
fn promtool_tests(
    name: &str,
    rules: &str,
    files: Vec<(String, String)>,
) -> Vec<(String, bool, String)> {
    let dir = temp_dir(name);
    std::fs::write(dir.join("mqtt-disconnect-exporter.rules.yml"), rules).unwrap();
    let runs: Vec<_> = files
        .into_iter()
        .map(|(file, text)| {
            std::fs::write(dir.join("tests").join(&file), text).unwrap();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let out = Command::new("promtool")
                    .args(["test", "rules", &format!("tests/{file}")])
                    .current_dir(&dir)
                    .output()
                    .unwrap_or_else(|e| {
                        panic!("promtool: {e} (run scripts/test.sh to install it)")
                    });
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (file, out.status.success(), text)
            })
        })
        .collect();
    let results = runs.into_iter().map(|r| r.join().unwrap()).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    results
}

fn assert_all_pass(results: &[(String, bool, String)]) {
    for (file, ok, text) in results {
        assert!(*ok, "promtool test rules {file} failed:\n{text}");
        assert!(text.contains("SUCCESS"), "{file}: {text}");
    }
}

/// The shipped tests, run as the committed file holds them: the short
/// cases, and the week-long scenarios split over two promtool processes.
#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn promtool_checks_and_unit_tests_pass() {
    let out = run("promtool", &["check", "rules", RULES_FILE], root());
    assert!(out.contains("SUCCESS: 23 rules found"), "{out}");
    let o = RulesOptions::default();
    assert_eq!(
        std::fs::read_to_string(root().join(TESTS_FILE)).unwrap(),
        promtool::tests_yaml(&o),
        "the committed tests are the generated ones"
    );
    let rules = std::fs::read_to_string(root().join(RULES_FILE)).unwrap();
    assert_all_pass(&promtool_tests(
        "shipped-tests",
        &rules,
        vec![
            ("short.yml".into(), promtool::short_tests_yaml(&o)),
            (
                "weeks-a.yml".into(),
                promtool::scenarios_yaml(&o, promtool::SEED, |i| i % 2 == 0),
            ),
            (
                "weeks-b.yml".into(),
                promtool::scenarios_yaml(&o, promtool::SEED, |i| i % 2 == 1),
            ),
        ],
    ));
}

/// The same scenarios drawn from other seeds (other noise, other storm
/// times of day) page and stay quiet the same way.
#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn paging_holds_for_scenarios_of_other_seeds() {
    let o = RulesOptions::default();
    let rules = rules::rules_yaml(&o);
    // the hour-long storm, the storm after install, too_many_connection,
    // and the day/night and bump weeks
    let pick = |i: usize| [0, 2, 3, 5, 6].contains(&i);
    assert_all_pass(&promtool_tests(
        "other-seeds",
        &rules,
        vec![
            ("seed7.yml".into(), promtool::scenarios_yaml(&o, 7, pick)),
            (
                "seed2026.yml".into(),
                promtool::scenarios_yaml(&o, 2026, pick),
            ),
        ],
    ));
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mde-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    dir
}

#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
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
        "--rules.dashboard-url",
        "https://grafana.example.com/d/mqtt-disconnects?orgId=1",
    ];
    let file = rules_cmd(&args);
    use clap::Parser as _;
    let o: RulesOptions = match mqtt_disconnect_exporter::cli::Cli::try_parse_from(
        [&["mqtt-disconnect-exporter", "rules"][..], &args[..]].concat(),
    ) {
        Ok(mqtt_disconnect_exporter::cli::Cli {
            command: Some(mqtt_disconnect_exporter::cli::Command::Rules(r)),
            ..
        }) => r.options(),
        other => panic!("{other:?}"),
    };
    assert_eq!(file, rules::rules_yaml(&o));
    let dir = temp_dir("custom-rules");
    std::fs::write(dir.join("mqtt-disconnect-exporter.rules.yml"), &file).unwrap();
    let out = run(
        "promtool",
        &["check", "rules", "mqtt-disconnect-exporter.rules.yml"],
        &dir,
    );
    assert!(out.contains("SUCCESS: 23 rules found"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
    // the short cases and the storm after install, with these labels
    assert_all_pass(&promtool_tests(
        "custom-rules-tests",
        &file,
        vec![
            ("short.yml".into(), promtool::short_tests_yaml(&o)),
            (
                "install.yml".into(),
                promtool::scenarios_yaml(&o, 3, |i| i == 2),
            ),
        ],
    ));
    assert!(file.contains("up{job=\"mqtt\",env=\"prod\"} == 0"));
    assert!(file.contains("absent(up{job=\"mqtt\",env=\"prod\"})"));
    assert!(!file.contains("mqtt-disconnect-exporter\""));
    assert_eq!(file.matches("severity: \"page\"").count(), 2);
    assert_eq!(file.matches("severity: \"notice\"").count(), 1);
    assert_eq!(
        file.matches("runbook_url: \"https://runbooks.example.com/mqtt.md#")
            .count(),
        19
    );
    // every reason alert links to the dashboard on its reason
    assert_eq!(
        file.matches(
            "dashboard_url: \"https://grafana.example.com/d/mqtt-disconnects?orgId=1&var-reason="
        )
        .count(),
        13
    );
    assert!(file.contains(
        "dashboard_url: \"https://grafana.example.com/d/mqtt-disconnects?orgId=1&var-reason=keepalive_timeout&from=now-3h&to=now\"\n"
    ));
}

#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn promtool_unit_tests_can_fail() {
    // The same tests against rules whose keepalive page never fires must fail.
    let o = RulesOptions::default();
    let broken = rules::rules_yaml(&o).replace(
        "{reason=\"keepalive_timeout\"} > 0.2\n",
        "{reason=\"keepalive_timeout\"} > 1e9\n",
    );
    assert_ne!(broken, rules::rules_yaml(&o));
    let results = promtool_tests(
        "broken-rules",
        &broken,
        vec![
            ("short.yml".into(), promtool::short_tests_yaml(&o)),
            (
                "install.yml".into(),
                promtool::scenarios_yaml(&o, promtool::SEED, |i| i == 2),
            ),
        ],
    );
    for (file, ok, text) in &results {
        assert!(!ok, "{file} passed against broken rules");
        assert!(text.contains("MQTTKeepaliveTimeoutSpike"), "{file}: {text}");
    }
    // the week-long check reports the figure it checked: none of the 116
    // evaluations from 2 minutes into the storm to its end fired
    assert!(
        results[1].2.contains("1.16E+02") && results[1].2.contains("got: nil"),
        "{}",
        results[1].2
    );
}

/// A selector that would give rules promtool rejects is refused; one whose
/// values hold `"` or `\` gives rules whose pages still expand.
#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn selectors_cannot_break_a_page() {
    for bad in [r#"job="a","#, r#"__name__="up""#, r#"job="a\q""#] {
        let out = Command::new(exporter_bin())
            .args(["rules", "--rules.selector", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let selector = r#"job="mqtt",env="a\"b\\c""#;
    let file = rules_cmd(&["--rules.selector", selector]);
    let o = RulesOptions {
        selector: selector.parse().unwrap(),
        ..RulesOptions::default()
    };
    assert_eq!(file, rules::rules_yaml(&o));
    assert_all_pass(&promtool_tests(
        "quoted-selector",
        &file,
        vec![("short.yml".into(), promtool::short_tests_yaml(&o))],
    ));
}

#[test]
#[ignore = "needs amtool; scripts/test.sh runs it"]
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
