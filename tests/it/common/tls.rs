//! Test certificates made with `openssl`: certificate authorities and the
//! certificates they issue, as PEM files in a directory.

use std::path::Path;
use std::process::Command;

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (run scripts/test.sh to install it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA: `NAME.key` and `NAME.pem`.
pub fn ca(dir: &Path, name: &str) {
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
    openssl(dir, &args);
}

/// A certificate signed by CA `ca`: `NAME.key` and `NAME.pem`, with the
/// extensions `ext` (openssl extfile lines).
pub fn issue(dir: &Path, ca: &str, name: &str, ext: &str) {
    sign(dir, ca, name, name, Some(ext));
}

/// `NAME.key` and a request for `/CN=cn`, signed by CA `ca` into
/// `NAME.pem`, with the extfile lines `ext` (none: an X.509 v1 certificate).
fn sign(dir: &Path, ca: &str, name: &str, cn: &str, ext: Option<&str>) {
    let (key, csr, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    let mut req = vec!["req"];
    req.extend(EC);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &req);
    let (pem, extfile, ca_pem, ca_key) = (
        format!("{name}.pem"),
        format!("{name}.ext"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
    );
    let mut x509 = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &pem,
        "-days",
        "2",
    ];
    if let Some(ext) = ext {
        std::fs::write(dir.join(&extfile), ext).unwrap();
        x509.extend(["-extfile", &extfile]);
    }
    openssl(dir, &x509);
}

/// Extensions of a server certificate for 127.0.0.1, ::1 and localhost.
pub const SERVER: &str =
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
/// Extensions of a client certificate.
pub const CLIENT: &str = "extendedKeyUsage=clientAuth\n";

/// A certificate made exactly as mosquitto-tls(7) says, `openssl x509 -req
/// -in NAME.csr -CA CA.crt -CAkey CA.key -CAcreateserial -out NAME.crt`
/// with no `-extfile`: with OpenSSL 3, an X.509 version 1 certificate with
/// only a CN (`/CN=cn`). `NAME.key` and `NAME.pem`.
pub fn issue_as_mosquitto_tls_manual(dir: &Path, ca: &str, name: &str, cn: &str) {
    sign(dir, ca, name, cn, None);
}
