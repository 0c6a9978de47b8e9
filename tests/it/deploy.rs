//! The deployment files: the systemd units pass `systemd-analyze verify`
//! (with this build's binary in ExecStart) and keep their hardening score.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mde-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a checker: (success, everything it printed).
fn check(command: &mut Command, what: &str) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run scripts/test.sh to install it)"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `systemd-analyze ARGS`: (success, everything it printed).
fn analyze(args: &[&str]) -> (bool, String) {
    check(
        Command::new("systemd-analyze").args(args),
        "systemd-analyze",
    )
}

/// `systemd-analyze security`'s overall exposure level of the unit at
/// `path`, and all it printed.
fn exposure(path: &str) -> (f64, String) {
    let (_, text) = analyze(&["security", "--offline=true", path]);
    let score = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {text}"));
    (score, text)
}

/// The shipped units, with ExecStart pointing at this build's binary (verify
/// checks that it exists and is executable).
fn units(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for name in [
        "mqtt-disconnect-exporter.service",
        "mqtt-disconnect-exporter@.service",
        "mqtt-disconnect-exporter-file.service",
    ] {
        let text = std::fs::read_to_string(root().join("deploy/systemd").join(name)).unwrap();
        assert_eq!(
            text.matches("ExecStart=/usr/local/bin/mqtt-disconnect-exporter\n")
                .count(),
            1
        );
        let text = text.replace(
            "/usr/local/bin/mqtt-disconnect-exporter",
            common::exporter_bin(),
        );
        std::fs::write(dir.join(name), text).unwrap();
        names.push(name.to_string());
    }
    names
}

#[test]
#[ignore = "needs systemd-analyze; scripts/test.sh runs it"]
fn systemd_units_verify_and_stay_hardened() {
    let dir = temp("systemd");
    units(&dir);
    for unit in [
        "mqtt-disconnect-exporter.service",
        "mqtt-disconnect-exporter@broker-a.service",
    ] {
        let path = dir.join(unit);
        let path = path.to_str().unwrap();
        let (ok, text) = analyze(&["verify", path]);
        assert!(ok && text.trim().is_empty(), "{unit}: {text}");
        let (score, text) = exposure(path);
        assert!(score <= 2.0, "{unit}: exposure {score}\n{text}");
        let unit_text = std::fs::read_to_string(dir.join(unit.replace("broker-a", ""))).unwrap();
        for line in [
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "Environment=MQTT_EXPORTER_MQTT_PASSWORD_FILE=%d/mqtt-password",
            // `systemctl reload` re-reads the web config and password file
            "ExecReload=/bin/kill -HUP $MAINPID",
        ] {
            assert!(unit_text.contains(&format!("\n{line}\n")), "{unit}: {line}");
        }
        assert!(unit_text.contains("\nLoadCredential=mqtt-password:/etc/mqtt-disconnect-exporter/"));
    }
    // the log-file sidecar: verified, as hardened, reading the log through
    // its groups
    let path = dir.join("mqtt-disconnect-exporter-file.service");
    let (ok, text) = analyze(&["verify", path.to_str().unwrap()]);
    assert!(ok && text.trim().is_empty(), "file unit: {text}");
    let (score, text) = exposure(path.to_str().unwrap());
    assert!(score <= 2.0, "file unit: exposure {score}\n{text}");
    let unit_text = std::fs::read_to_string(&path).unwrap();
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "SupplementaryGroups=adm mosquitto",
        "Environment=MQTT_EXPORTER_MQTT_DISABLE=true",
        "Environment=MQTT_EXPORTER_FILE_PATH=/var/log/mosquitto/mosquitto.log",
    ] {
        assert!(
            unit_text.contains(&format!("\n{line}\n")),
            "file unit: {line}"
        );
    }
    let template = std::fs::read_to_string(dir.join("mqtt-disconnect-exporter@.service")).unwrap();
    assert!(template.contains("\nEnvironmentFile=/etc/mqtt-disconnect-exporter/%i.env\n"));

    // the check can fail: a misspelt hardening key is reported
    let unit = std::fs::read_to_string(dir.join("mqtt-disconnect-exporter.service")).unwrap();
    std::fs::write(
        dir.join("broken.service"),
        unit.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"),
    )
    .unwrap();
    let (_, text) = analyze(&["verify", dir.join("broken.service").to_str().unwrap()]);
    assert!(text.contains("Unknown key 'NoNewPrivilege'"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every variable the units and the example environment file set is a flag's.
#[test]
fn the_units_set_only_real_flags() {
    use clap::CommandFactory;
    let command = mqtt_disconnect_exporter::cli::Cli::command();
    let flags: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().to_string())
        .collect();
    let mut checked = 0;
    for file in [
        "mqtt-disconnect-exporter.service",
        "mqtt-disconnect-exporter@.service",
        "mqtt-disconnect-exporter-file.service",
        "example.env",
    ] {
        let text = std::fs::read_to_string(root().join("deploy/systemd").join(file)).unwrap();
        for var in text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("MQTT_EXPORTER_") && w.len() > "MQTT_EXPORTER_".len())
        {
            assert!(
                flags.iter().any(|f| f == var),
                "{file}: {var} is not a flag's"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

fn kube(file: &str) -> PathBuf {
    root().join("deploy/kubernetes").join(file)
}

/// `kubernetes-validate --strict` on one file: (success, output).
fn kubernetes_validate(path: &Path) -> (bool, String) {
    check(
        Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "-k", "1.29.0"])
            .arg(path),
        "kubernetes-validate (from PyPI)",
    )
}

/// The CRD-schema check of custom resources: (success, output).
fn crd_validate(crd: &str, path: &Path) -> (bool, String) {
    check(
        Command::new("python3")
            .arg(kube("crds/validate.py"))
            .arg(kube(&format!("crds/monitoring.coreos.com_{crd}.yaml")))
            .arg(path),
        "python3 with jsonschema and PyYAML",
    )
}

#[test]
#[ignore = "needs kubernetes-validate; scripts/test.sh runs it"]
fn kubernetes_core_kinds_validate_and_a_wrong_field_fails() {
    for (file, kind) in [
        ("deployment.yaml", "deployment/mqtt-disconnect-exporter"),
        ("service.yaml", "service/mqtt-disconnect-exporter"),
        (
            "dashboards.yaml",
            "configmap/mqtt-disconnect-exporter-dashboards",
        ),
    ] {
        let (ok, text) = kubernetes_validate(&kube(file));
        assert!(ok, "{file}: {text}");
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{file}: {text}"
        );
    }
    let dir = temp("kube");
    let bad = dir.join("deployment.yaml");
    let text = std::fs::read_to_string(kube("deployment.yaml")).unwrap();
    std::fs::write(&bad, text.replace("  replicas: 1\n", "  replica: 1\n")).unwrap();
    let (ok, text) = kubernetes_validate(&bad);
    assert!(!ok, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn servicemonitor_and_prometheusrule_fit_the_operators_crds() {
    for (crd, file, kind) in [
        ("servicemonitors", "servicemonitor.yaml", "ServiceMonitor"),
        ("prometheusrules", "prometheusrule.yaml", "PrometheusRule"),
    ] {
        let (ok, text) = crd_validate(crd, &kube(file));
        assert!(ok, "{file}: {text}");
        assert!(text.starts_with("OK ") && text.contains(kind), "{text}");
    }
    let dir = temp("crd");
    let bad = dir.join("servicemonitor.yaml");
    let text = std::fs::read_to_string(kube("servicemonitor.yaml")).unwrap();
    std::fs::write(&bad, text.replace("interval: 30s", "intervall: 30s")).unwrap();
    let (ok, text) = crd_validate("servicemonitors", &bad);
    assert!(!ok && text.contains("'intervall' was unexpected"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generated_manifests_are_current_and_listed() {
    use mqtt_disconnect_exporter::tools::{dashboards, rules};
    crate::alerts::check_generated(
        "deploy/kubernetes/prometheusrule.yaml",
        &rules::prometheus_rule(&rules::RulesOptions::default()),
    );
    crate::alerts::check_generated(
        "deploy/kubernetes/dashboards.yaml",
        &dashboards::configmap(),
    );
    // the ConfigMap holds the dashboards byte for byte
    let map: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kube("dashboards.yaml")).unwrap())
            .unwrap();
    for file in ["mqtt-disconnects.json", "mqtt-flapping.json"] {
        let shipped = std::fs::read_to_string(root().join("dashboards").join(file)).unwrap();
        assert_eq!(map["data"][file].as_str(), Some(shipped.as_str()), "{file}");
    }
    assert_eq!(
        map["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );

    // every manifest beside the kustomization is one of its resources
    let kustomization: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kube("kustomization.yaml")).unwrap())
            .unwrap();
    let mut listed: Vec<String> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    let mut present: Vec<String> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(listed, present);
}

#[test]
fn the_deployment_runs_as_non_root_with_probes_and_the_secret() {
    let d: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kube("deployment.yaml")).unwrap())
            .unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65534));
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/healthy")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/ready")
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"].as_str(),
        Some("mqtt-disconnect-exporter")
    );
    let env = |name: &str| {
        c["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .and_then(|e| e["value"].as_str().map(String::from))
    };
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        env("MQTT_EXPORTER_MQTT_PASSWORD_FILE"),
        Some(format!("{mount}/password"))
    );
    assert_eq!(
        env("MQTT_EXPORTER_WEB_LISTEN_ADDRESS").as_deref(),
        Some(":9883")
    );
    // the memory request covers the measured storm peak (196 MiB), the
    // limit leaves room above it
    let mib = |v: &serde_yaml_ng::Value| {
        v.as_str()
            .and_then(|s| s.strip_suffix("Mi"))
            .and_then(|s| s.parse::<u64>().ok())
    };
    assert!(mib(&c["resources"]["requests"]["memory"]).is_some_and(|m| m >= 192));
    assert!(mib(&c["resources"]["limits"]["memory"]).is_some_and(|m| m >= 2 * 192));
}
