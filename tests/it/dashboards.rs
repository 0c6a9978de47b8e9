//! The shipped Grafana dashboards, checked without Grafana: a unit on every
//! panel, "Broker session up" mapping 0 to a red DOWN, `__requires`, links by
//! tag, runbook data links, the top-devices table and the annotations; and a
//! type-check against Grafana's published dashboard types (@grafana/schema,
//! pinned in dashboards/typecheck/package-lock.json) with tsc. The panel
//! queries run against a real Prometheus in `alerting_e2e`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mqtt_disconnect_exporter::tools::rules::DEFAULT_RUNBOOK_URL;
use serde_json::Value;

const FILES: [&str; 2] = ["mqtt-disconnects.json", "mqtt-flapping.json"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

fn load(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(file)).unwrap()).unwrap()
}

fn panels(d: &Value) -> impl Iterator<Item = &Value> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
}

fn panel<'a>(d: &'a Value, title: &str) -> &'a Value {
    panels(d)
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"))
}

#[test]
fn every_panel_has_a_unit() {
    let mut n = 0;
    for file in FILES {
        for p in panels(&load(file)) {
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{file}: {} has no unit", p["title"]);
            n += 1;
        }
    }
    assert_eq!(n, 20);
}

#[test]
fn broker_session_up_shows_0_as_a_red_down() {
    let d = load("mqtt-disconnects.json");
    let p = panel(&d, "Broker session up");
    let defaults = &p["fieldConfig"]["defaults"];
    let map = &defaults["mappings"][0]["options"];
    assert_eq!(defaults["mappings"][0]["type"], "value");
    assert_eq!(
        (&map["0"]["text"], &map["0"]["color"]),
        (&"DOWN".into(), &"red".into())
    );
    assert_eq!(
        (&map["1"]["text"], &map["1"]["color"]),
        (&"UP".into(), &"green".into())
    );
    // without a mapping the thresholds colour it: below 1 is red
    let steps = defaults["thresholds"]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["color"], "red");
    assert_eq!(steps[0]["value"], Value::Null);
    assert_eq!(
        (&steps[1]["color"], &steps[1]["value"]),
        (&"green".into(), &1.into())
    );
    assert_eq!(defaults["color"]["mode"], "thresholds");
    assert_eq!(p["options"]["colorMode"], "background");
}

#[test]
#[ignore = "needs node and prometheus; scripts/test.sh runs it"]
fn requires_links_by_tag_and_annotations() {
    for file in FILES {
        let d = load(file);
        let requires: BTreeSet<(String, String)> = d["__requires"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap().into(),
                    r["id"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert!(
            requires.contains(&("grafana".into(), "grafana".into())),
            "{file}"
        );
        assert!(
            requires.contains(&("datasource".into(), "prometheus".into())),
            "{file}"
        );
        let used: BTreeSet<(String, String)> = panels(&d)
            .map(|p| ("panel".to_string(), p["type"].as_str().unwrap().to_string()))
            .collect();
        let listed: BTreeSet<(String, String)> = requires
            .iter()
            .filter(|(t, _)| t == "panel")
            .cloned()
            .collect();
        assert_eq!(listed, used, "{file}: __requires panels");

        assert!(d["tags"]
            .as_array()
            .unwrap()
            .contains(&"mqtt-disconnect-exporter".into()));
        let links = d["links"].as_array().unwrap();
        assert_eq!(links.len(), 1, "{file}");
        assert_eq!(links[0]["type"], "dashboards");
        assert_eq!(
            links[0]["tags"],
            serde_json::json!(["mqtt-disconnect-exporter"])
        );
        assert_eq!(links[0]["includeVars"], true);
        assert_eq!(links[0]["keepTime"], true);
        assert!(
            !d.to_string().contains("\"url\":\"/d/"),
            "{file}: a root-relative link"
        );

        let exprs: Vec<&str> = d["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["target"]["expr"].as_str())
            .collect();
        assert_eq!(exprs.len(), 2, "{file}");
        assert!(
            exprs[0].starts_with("changes(process_start_time_seconds{"),
            "{file}"
        );
        assert!(exprs[1].contains("reason=\"go_away\""), "{file}");
    }
}

#[test]
fn reasons_link_to_their_runbook_section_and_top_devices_follow_the_reason() {
    let d = load("mqtt-disconnects.json");
    let table = panel(&d, "Reasons with meaning and recommended action");
    let o = &table["fieldConfig"]["overrides"][0];
    assert_eq!(
        o["matcher"],
        serde_json::json!({"id": "byName", "options": "reason"})
    );
    assert_eq!(o["properties"][0]["id"], "links");
    assert_eq!(
        o["properties"][0]["value"][0]["url"],
        format!("{DEFAULT_RUNBOOK_URL}#${{__value.text}}")
    );
    for title in [
        "Disconnect rate by reason",
        "Disconnect rate by reason, as the alerts see it",
    ] {
        assert_eq!(
            panel(&d, title)["fieldConfig"]["defaults"]["links"][0]["url"],
            format!("{DEFAULT_RUNBOOK_URL}#${{__field.labels.reason}}")
        );
    }
    let top = panel(&d, "Top devices for $reason");
    assert_eq!(
        top["targets"][0]["expr"],
        "topk(20, max by (clientid) (mqtt_client_top_disconnects{job=~\"$job\",instance=~\"$instance\",reason=\"$reason\"}))"
    );
    let reason = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "reason")
        .unwrap();
    assert_eq!(reason["current"]["value"], "keepalive_timeout");
    assert_eq!(reason["multi"], false);
    let recorded = panel(&d, "Disconnect rate by reason, as the alerts see it");
    assert!(recorded["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .contains(mqtt_disconnect_exporter::tools::rules::RATE_5M));
}

fn typecheck(files: &[PathBuf]) -> std::process::Output {
    let tools = dir().join("typecheck");
    assert!(
        tools.join("node_modules/@grafana/schema").exists(),
        "run scripts/test.sh (it runs `npm ci` in dashboards/typecheck)"
    );
    Command::new("node")
        .arg(tools.join("check.mjs"))
        .args(files)
        .current_dir(&tools)
        .output()
        .expect("node (run scripts/test.sh to install it)")
}

/// One test: check.mjs writes into one build directory.
#[test]
#[ignore = "needs node; scripts/test.sh runs it"]
fn dashboards_type_check_against_grafanas_schema_and_a_bad_one_does_not() {
    let shipped: Vec<PathBuf> = FILES.iter().map(|f| dir().join(f)).collect();
    let out = typecheck(&shipped);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("type-checked 2 dashboard(s)"), "{text}");

    let tmp = std::env::temp_dir().join(format!("mde-dash-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut bad = Vec::new();
    for (i, (pointer, value)) in [
        (
            "/panels/1/fieldConfig/defaults/color",
            serde_json::json!({"mode": "rainbow"}),
        ),
        ("/panels/1/gridPos/w", serde_json::json!("12")),
        ("/templating/list/1/refesh", serde_json::json!(2)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = load(FILES[0]);
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        d.pointer_mut(parent).unwrap()[key] = value;
        let path = tmp.join(format!("bad{i}.json"));
        std::fs::write(&path, d.to_string()).unwrap();
        bad.push(path);
    }
    for path in &bad {
        let out = typecheck(std::slice::from_ref(path));
        assert!(!out.status.success(), "{} type-checked", path.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains("error TS"));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
