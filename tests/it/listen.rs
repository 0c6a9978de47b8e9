//! Where the exporter listens: several `--web.listen-address`es, `:port` on
//! IPv6 and IPv4 both, host names resolved, and IPv6 loopback. The exporter
//! runs in process (no broker is needed to listen).

use crate::common;

use std::net::{Ipv6Addr, SocketAddr};

use common::get_at;
use common::in_process::InProcess;

fn healthy(addr: SocketAddr) -> u16 {
    get_at(addr, "/-/healthy")
        .map(|(code, _)| code)
        .unwrap_or(0)
}

#[test]
fn listens_on_every_address_given_ipv6_included() {
    let exporter = InProcess::start(&[
        "--web.listen-address",
        "[::1]:0",
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    let [v6, v4] = exporter.addresses[..] else {
        panic!("{:?}", exporter.addresses)
    };
    assert_eq!(v6.ip(), Ipv6Addr::LOCALHOST);
    assert!(v4.ip().is_loopback() && v4.is_ipv4());
    assert_eq!(healthy(v6), 200);
    assert_eq!(healthy(v4), 200);
    let (code, body) = get_at(v6, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("mqtt_exporter_build_info{"));
}

#[test]
fn a_bare_port_listens_on_ipv6_and_ipv4() {
    let exporter = InProcess::start(&["--web.listen-address", ":0"]);
    assert_eq!(exporter.addresses.len(), 1, "{:?}", exporter.addresses);
    let any = exporter.addresses[0];
    assert!(any.ip().is_unspecified() && any.is_ipv6(), "{any}");
    assert_eq!(
        healthy(SocketAddr::from((Ipv6Addr::LOCALHOST, any.port()))),
        200
    );
    assert_eq!(healthy(SocketAddr::from(([127, 0, 0, 1], any.port()))), 200);
}

#[test]
fn a_host_name_is_resolved() {
    let exporter = InProcess::start(&["--web.listen-address", "localhost:0"]);
    assert!(!exporter.addresses.is_empty());
    for addr in &exporter.addresses {
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(healthy(*addr), 200, "{addr}");
    }
}
