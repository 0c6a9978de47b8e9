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

/// `systemd-analyze ARGS`: (success, everything it printed).
fn analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze (run scripts/test.sh to install it)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The shipped units, with ExecStart pointing at this build's binary (verify
/// checks that it exists and is executable).
fn units(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for name in [
        "mqtt-disconnect-exporter.service",
        "mqtt-disconnect-exporter@.service",
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
        let (_, text) = analyze(&["security", "--offline=true", path]);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level: {text}"));
        assert!(score <= 2.0, "{unit}: exposure {score}\n{text}");
        let unit_text = std::fs::read_to_string(dir.join(unit.replace("broker-a", ""))).unwrap();
        for line in [
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "Environment=MQTT_EXPORTER_MQTT_PASSWORD_FILE=%d/mqtt-password",
        ] {
            assert!(unit_text.contains(&format!("\n{line}\n")), "{unit}: {line}");
        }
        assert!(unit_text.contains("\nLoadCredential=mqtt-password:/etc/mqtt-disconnect-exporter/"));
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
