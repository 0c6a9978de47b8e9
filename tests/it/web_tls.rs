//! `--web.config.file` (the exporter-toolkit format) end to end: a real
//! Prometheus scrapes over HTTPS with basic auth; curl sees 401 for a wrong
//! password, a refused plain-HTTP request, a demanded client certificate;
//! rotated certificates and changed users apply without a restart; a bad
//! file is refused at start naming its key.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, tls, wait_for, Exporter, KillOnDrop};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mde-web-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn curl(dir: &Path, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "body.txt"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("curl (run scripts/test.sh to install it)")
}

/// The status code curl got, 0 when it got none.
fn code(out: &Output) -> u16 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Replaces a file the way a secret or cert-manager rotation does: write
/// beside, then rename over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn start(config: &Path) -> (Exporter, String) {
    let exporter = Exporter::start_listening(
        &["--web.config.file", config.to_str().unwrap()],
        &["127.0.0.1:0"],
        1,
    );
    let url = format!("https://127.0.0.1:{}", exporter.web_port);
    (exporter, url)
}

#[test]
#[ignore = "needs curl, openssl and prometheus; scripts/test.sh runs it"]
fn prometheus_scrapes_over_https_with_basic_auth_and_the_rest_is_refused() {
    let dir = temp("auth");
    tls::ca(&dir, "ca");
    tls::issue(&dir, "ca", "server", tls::SERVER);
    let hash = bcrypt::hash("scrape pass", 4).unwrap();
    // relative paths are read from the config file's folder
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n\
             basic_auth_users:\n  prometheus: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    \
             Strict-Transport-Security: max-age=31536000\n"
        ),
    )
    .unwrap();
    let (exporter, url) = start(&dir.join("web.yml"));

    let metrics = format!("{url}/metrics");
    let ok = curl(
        &dir,
        &[
            "--cacert",
            "ca.pem",
            "-u",
            "prometheus:scrape pass",
            &metrics,
        ],
    );
    assert_eq!(code(&ok), 200, "{ok:?}");
    let headers = String::from_utf8_lossy(&ok.stdout).to_lowercase();
    assert!(
        headers.contains("x-content-type-options: nosniff"),
        "{headers}"
    );
    assert!(headers.contains("strict-transport-security: max-age=31536000"));
    let body = std::fs::read_to_string(dir.join("body.txt")).unwrap();
    assert!(body.contains("mqtt_exporter_build_info{"), "{body}");

    let wrong = curl(
        &dir,
        &["--cacert", "ca.pem", "-u", "prometheus:wrong", &metrics],
    );
    assert_eq!(code(&wrong), 401);
    assert!(
        String::from_utf8_lossy(&wrong.stdout).contains("WWW-Authenticate: Basic")
            || String::from_utf8_lossy(&wrong.stdout)
                .to_lowercase()
                .contains("www-authenticate: basic")
    );
    assert_eq!(
        code(&curl(
            &dir,
            &["--cacert", "ca.pem", "-u", "eve:scrape pass", &metrics]
        )),
        401
    );
    // every endpoint is covered
    for path in [
        "/",
        "/-/healthy",
        "/-/ready",
        "/api/v1/top",
        "/api/v1/flapping",
        "/metrics",
    ] {
        let out = curl(&dir, &["--cacert", "ca.pem", &format!("{url}{path}")]);
        assert_eq!(code(&out), 401, "{path}");
    }
    // plain HTTP to the HTTPS port gets no HTTP answer at all
    let plain = curl(
        &dir,
        &[&format!("http://127.0.0.1:{}/metrics", exporter.web_port)],
    );
    assert!(!plain.status.success());
    assert_eq!(code(&plain), 0, "{plain:?}");

    // A real Prometheus: scheme https, tls_config, basic_auth; and a job
    // with the wrong password, which must be down.
    let prom_port = free_port();
    let target = format!("127.0.0.1:{}", exporter.web_port);
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    \
             basic_auth:\n      username: prometheus\n      password: '{password}'\n    \
             static_configs:\n      - targets: ['{target}']\n",
            ca = dir.join("ca.pem").display()
        )
    };
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("secure", "scrape pass"),
            job("wrong-password", "nope")
        ),
    )
    .unwrap();
    let _prom = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (run scripts/test.sh to install it)"),
    );
    let up = |job: &str| -> Option<String> {
        let (_, body) = common::get(
            prom_port,
            &format!("/api/v1/query?query=up%7Bjob%3D%22{job}%22%7D"),
        )
        .ok()?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1]
            .as_str()
            .map(String::from)
    };
    wait_for(
        "prometheus to scrape over HTTPS",
        Duration::from_secs(60),
        || (up("secure").as_deref() == Some("1")).then_some(()),
    );
    wait_for(
        "the wrong password's scrape to fail",
        Duration::from_secs(60),
        || (up("wrong-password").as_deref() == Some("0")).then_some(()),
    );
    let (_, body) = common::get(
        prom_port,
        "/api/v1/query?query=mqtt_exporter_http_connections_closed_total%7Bjob%3D%22secure%22%2Ccause%3D%22tls_handshake%22%7D",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    // the plain-HTTP attempt above was a failed handshake
    let failed: f64 = json["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs curl and openssl; scripts/test.sh runs it"]
fn client_certificates_are_demanded_and_rotations_apply_without_a_restart() {
    let dir = temp("mtls");
    tls::ca(&dir, "ca");
    tls::issue(&dir, "ca", "server", tls::SERVER);
    tls::issue(&dir, "ca", "client", tls::CLIENT);
    tls::ca(&dir, "ca2");
    tls::issue(&dir, "ca2", "server2", tls::SERVER);
    let web = dir.join("web.yml");
    let mtls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
                client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n";
    std::fs::write(&web, mtls).unwrap();
    let (exporter, url) = start(&web);
    let healthy = format!("{url}/-/healthy");
    let with_cert = |ca: &str| {
        curl(
            &dir,
            &[
                "--cacert",
                ca,
                "--cert",
                "client.pem",
                "--key",
                "client.key",
                &healthy,
            ],
        )
    };

    assert_eq!(code(&with_cert("ca.pem")), 200);
    let without = curl(&dir, &["--cacert", "ca.pem", &healthy]);
    assert!(!without.status.success(), "{without:?}");
    assert_eq!(code(&without), 0);
    // a client certificate from another CA is refused too
    tls::issue(&dir, "ca2", "stranger", tls::CLIENT);
    let stranger = curl(
        &dir,
        &[
            "--cacert",
            "ca.pem",
            "--cert",
            "stranger.pem",
            "--key",
            "stranger.key",
            &healthy,
        ],
    );
    assert_eq!(code(&stranger), 0);
    // a v1 client certificate (made as mosquitto-tls(7) says) is refused by
    // the verifier: said once at warn with the fix, however often it comes
    tls::issue_as_mosquitto_tls_manual(&dir, "ca", "client-v1", "device");
    let v1 = |_: ()| {
        code(&curl(
            &dir,
            &[
                "--cacert",
                "ca.pem",
                "--cert",
                "client-v1.pem",
                "--key",
                "client-v1.key",
                &healthy,
            ],
        ))
    };
    assert_eq!((v1(()), v1(())), (0, 0));
    let log = wait_for("the refusal to be told", Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&exporter.log).ok()?;
        // both handshakes were seen (the second at debug, not logged here)
        log.contains("UnsupportedCertVersion").then_some(log)
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&exporter.log).unwrap_or(log);
    let told: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=warn") && l.contains("UnsupportedCertVersion"))
        .collect();
    assert_eq!(told.len(), 1, "{log}");
    assert!(told[0].contains("re-issue it with -extfile"), "{log}");

    // Rotate the server certificate to one from another CA: the next
    // connection gets it, no restart.
    assert_eq!(code(&with_cert("ca2.pem")), 0);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    replace(&dir.join("server.key"), &read("server2.key"));
    replace(&dir.join("server.pem"), &read("server2.pem"));
    wait_for("the rotated certificate", Duration::from_secs(10), || {
        (code(&with_cert("ca2.pem")) == 200).then_some(())
    });
    assert_eq!(code(&with_cert("ca.pem")), 0);

    // Users added, then a password changed: the next request is checked
    // against the new file.
    let user = |password: &str| {
        let hash = bcrypt::hash(password, 4).unwrap();
        format!("{mtls}basic_auth_users:\n  ops: '{hash}'\n")
    };
    replace(&web, &user("first"));
    let as_ops = |password: &str| {
        code(&curl(
            &dir,
            &[
                "--cacert",
                "ca2.pem",
                "--cert",
                "client.pem",
                "--key",
                "client.key",
                "-u",
                &format!("ops:{password}"),
                &healthy,
            ],
        ))
    };
    // applied once the file has stayed whole for a moment: then a request
    // without credentials is refused
    wait_for("the new user", Duration::from_secs(10), || {
        (code(&with_cert("ca2.pem")) == 401).then_some(())
    });
    assert_eq!(as_ops("first"), 200);
    replace(&web, &user("second"));
    wait_for("the changed password", Duration::from_secs(10), || {
        (as_ops("second") == 200).then_some(())
    });
    assert_eq!(as_ops("first"), 401);

    // A file that turns bad is logged (once it has stayed so for a
    // moment); the last good one stays in force.
    replace(&web, "tls_server_config:\n  cert_file: [\n");
    assert_eq!(as_ops("second"), 200);
    wait_for("the bad file to be logged", Duration::from_secs(10), || {
        assert_eq!(as_ops("second"), 200);
        let log = std::fs::read_to_string(&exporter.log).unwrap();
        log.contains("web config is invalid").then_some(())
    });
    assert_eq!(as_ops("second"), 200);
    let log = std::fs::read_to_string(&exporter.log).unwrap();
    assert_eq!(
        log.matches("web config is invalid").count(),
        1,
        "logged once: {log}"
    );
    assert!(!log.contains("second"), "a password leaked into the log");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs openssl; scripts/test.sh runs it"]
fn a_bad_web_config_is_refused_at_start_naming_the_key() {
    let dir = temp("bad");
    tls::ca(&dir, "ca");
    tls::issue(&dir, "ca", "server", tls::SERVER);
    for (text, want) in [
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: Sometimes\n",
            "tls_server_config.client_auth_type: invalid ClientAuth: Sometimes",
        ),
        ("basic_auth_users:\n  a: plaintext\n", "basic_auth_users.a: not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: ca.key\n", "tls_server_config.key_file: does not fit cert_file"),
        ("http_server_config:\n  headers:\n    Server: me\n", "http_server_config.headers.Server"),
        ("tls_server_config:\n  cert_fil: server.pem\n", "unknown field `cert_fil`"),
    ] {
        std::fs::write(dir.join("web.yml"), text).unwrap();
        let out = Command::new(common::exporter_bin())
            .args(["--web.config.file", dir.join("web.yml").to_str().unwrap()])
            .args(["--web.listen-address", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--web.config.file"), "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One request on an open keep-alive connection: the status code.
fn request_on(stream: &mut std::net::TcpStream, user: &str, password: &str) -> u16 {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Read, Write};
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        stream,
        "GET /-/healthy HTTP/1.1\r\nHost: exporter\r\nAuthorization: Basic {credentials}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_removed_user_is_refused_on_an_open_connection_without_traffic_to_notice() {
    let dir = temp("revoked");
    let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prom: '{}'\n", hash("goodpw")),
    )
    .unwrap();
    let exporter = Exporter::start_listening(
        &["--web.config.file", web.to_str().unwrap()],
        &["127.0.0.1:0"],
        1,
    );
    let mut open = std::net::TcpStream::connect(("127.0.0.1", exporter.web_port)).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(request_on(&mut open, "prom", "goodpw"), 200);
    // prom is replaced by eve; nothing asks the exporter anything meanwhile
    replace(
        &web,
        &format!("basic_auth_users:\n  eve: '{}'\n", hash("evepw")),
    );
    wait_for(
        "the reload, with no request to notice it",
        Duration::from_secs(20),
        || {
            let log = std::fs::read_to_string(&exporter.log).ok()?;
            log.contains("web config reloaded").then_some(())
        },
    );
    // the connection opened before the change: checked against the users
    // in force now
    assert_eq!(request_on(&mut open, "prom", "goodpw"), 401);
    assert_eq!(request_on(&mut open, "eve", "evepw"), 200);
}

#[test]
#[ignore = "needs curl and openssl; scripts/test.sh runs it"]
fn a_reload_that_lowers_the_client_certificate_requirement_is_refused() {
    let dir = temp("mtls-lowered");
    tls::ca(&dir, "ca");
    tls::issue(&dir, "ca", "server", tls::SERVER);
    tls::issue(&dir, "ca", "client", tls::CLIENT);
    let web = dir.join("web.yml");
    let mtls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
                client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n";
    std::fs::write(&web, mtls).unwrap();
    let (exporter, url) = start(&web);
    let metrics = format!("{url}/metrics");
    let with_cert = || {
        curl(
            &dir,
            &[
                "--cacert",
                "ca.pem",
                "--cert",
                "client.pem",
                "--key",
                "client.key",
                &metrics,
            ],
        )
    };
    let without = || curl(&dir, &["--cacert", "ca.pem", &metrics]);
    assert_eq!(code(&with_cert()), 200);
    assert_eq!(code(&without()), 0);
    // rewritten without client_auth_type, then half-written (a valid file
    // without it) and left so: neither may let a client without a
    // certificate in
    replace(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    wait_for("the reload to be refused", Duration::from_secs(20), || {
        let log = std::fs::read_to_string(&exporter.log).ok()?;
        log.contains("it would lower the client-certificate requirement")
            .then_some(())
    });
    assert_eq!(code(&without()), 0, "a client without a certificate got in");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_ca_file: ca.pem\n",
    )
    .unwrap();
    wait_for(
        "the half-written file to be refused",
        Duration::from_secs(20),
        || {
            let log = std::fs::read_to_string(&exporter.log).ok()?;
            log.contains("web config is invalid").then_some(())
        },
    );
    assert_eq!(code(&without()), 0, "a client without a certificate got in");
    assert_eq!(code(&with_cert()), 200);
    let text = std::fs::read_to_string(dir.join("body.txt")).unwrap();
    let reloads = |result: &str| {
        common::metric(
            &text,
            &format!(r#"mqtt_exporter_web_config_reloads_total{{result="{result}"}}"#),
        )
    };
    assert_eq!(
        (reloads("refused"), reloads("invalid"), reloads("success")),
        (Some(1.0), Some(1.0), Some(0.0)),
        "{text}"
    );
}
