//! The container image, without a container runtime: `scripts/image.sh`
//! builds it with podman (vfs storage, nothing pulled), its filesystem is
//! exported, and the exporter runs from it under
//! `chroot --userspec=65534:65534` against Mosquitto reached by host name
//! (an /etc/hosts entry, as a runtime writes one), with the image's own
//! environment, so it listens on :9883 as its entrypoint does.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{disconnect, get_at, wait_for, Broker, KillOnDrop};
use serde_json::Value;

const PODMAN: [&str; 3] = ["podman", "--storage-driver", "vfs"];
const TAG: &str = "localhost/mqtt-disconnect-exporter:it";

fn podman(args: &[&str]) -> std::process::Output {
    Command::new(PODMAN[0])
        .args(&PODMAN[1..])
        .args(args)
        .output()
        .expect("podman (run scripts/test.sh to install it)")
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> usize {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x) as usize
}

/// (has a program interpreter, i.e. is dynamically linked; section names)
/// of a 64-bit little-endian ELF file.
fn elf(path: &Path) -> (bool, Vec<String>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let (phoff, phentsize, phnum) = (u64_at(&b, 0x20), u16_at(&b, 0x36), u16_at(&b, 0x38));
    let interp = (0..phnum).any(|i| u32_at(&b, phoff + i * phentsize) == 3);
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&b, 0x28),
        u16_at(&b, 0x3A),
        u16_at(&b, 0x3C),
        u16_at(&b, 0x3E),
    );
    let strtab = u64_at(&b, shoff + shstrndx * shentsize + 0x18);
    let names = (0..shnum)
        .map(|i| {
            let start = strtab + u32_at(&b, shoff + i * shentsize) as usize;
            let end = start + b[start..].iter().position(|&c| c == 0).unwrap_or(0);
            String::from_utf8_lossy(&b[start..end]).into_owned()
        })
        .collect();
    (interp, names)
}

#[test]
#[ignore = "needs mosquitto and podman; scripts/test.sh runs it"]
fn the_image_runs_as_non_root_and_reaches_the_broker_by_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = Command::new(root.join("scripts/image.sh"))
        .arg(TAG)
        .env("ENGINE", PODMAN.join(" "))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "scripts/image.sh failed:\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );

    // the image's configuration
    let inspect = podman(&["image", "inspect", TAG]);
    assert!(inspect.status.success());
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65534:65534");
    assert_eq!(config["ExposedPorts"], serde_json::json!({"9883/tcp": {}}));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/mqtt-disconnect-exporter"])
    );
    let env: Vec<(String, String)> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(env.contains(&("MQTT_EXPORTER_WEB_LISTEN_ADDRESS".into(), ":9883".into())));

    // its filesystem: the binary (static, no debug info) and a CA bundle
    let fs: PathBuf = std::env::temp_dir().join(format!("mde-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fs);
    std::fs::create_dir_all(&fs).unwrap();
    let container = format!("mde-it-{}", std::process::id());
    let _ = podman(&["rm", "-f", &container]);
    assert!(podman(&["create", "--name", &container, TAG])
        .status
        .success());
    let mut export = Command::new(PODMAN[0])
        .args(&PODMAN[1..])
        .args(["export", &container])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let untar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&fs)
        .stdin(export.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(untar.success());
    assert!(export.wait().unwrap().success());
    let _ = podman(&["rm", "-f", &container]);
    let (dynamic, sections) = elf(&fs.join("mqtt-disconnect-exporter"));
    assert!(!dynamic, "the binary is dynamically linked");
    assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
    assert!(
        !sections.iter().any(|s| s.starts_with(".debug")),
        "{sections:?}"
    );
    let bundle = std::fs::read_to_string(fs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 10);

    // run it as the image would: its environment, user 65534, the broker
    // by host name
    let broker = Broker::start();
    std::fs::write(
        fs.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 mqtt-broker\n",
    )
    .unwrap();
    let log = fs.join("exporter.log");
    let child = Command::new("chroot")
        .arg("--userspec=65534:65534")
        .arg(&fs)
        .arg("/mqtt-disconnect-exporter")
        .args(["--mqtt.url", &format!("mqtt://mqtt-broker:{}", broker.port)])
        .args(["--mqtt.topic", "$events/#", "--mqtt.client-id", "it-image"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("chroot");
    let pid = child.id();
    let _exporter = KillOnDrop(child);
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], 9883));
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9883));
    wait_for(
        "the exporter from the image to subscribe",
        Duration::from_secs(20),
        || get_at(v4, "/-/ready").ok().filter(|(code, _)| *code == 200),
    );
    broker.publish(
        "$events/client_disconnected",
        disconnect("dev-1", "keepalive_timeout").json().as_bytes(),
        1,
    );
    let metrics = wait_for("the event to be counted", Duration::from_secs(20), || {
        let (_, body) = get_at(v6, "/metrics").ok()?;
        body.contains("mqtt_client_disconnects_total{reason=\"keepalive_timeout\"} 1")
            .then_some(body)
    });
    assert_eq!(
        common::metric(&metrics, "mqtt_exporter_broker_up"),
        Some(1.0)
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("65534"), "{uid}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("broker=mqtt-broker:"), "{log}");
    drop(_exporter);
    let _ = std::fs::remove_dir_all(&fs);
}
