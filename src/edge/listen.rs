//! Where the HTTP edge listens: the `--web.listen-address` values
//! ([`ListenAddress`]) and the sockets bound for them ([`bind`]).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

/// Where to listen: a host (a name or an address) or every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    /// None: every interface, IPv6 and IPv4.
    pub host: Option<String>,
    pub port: u16,
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            None => write!(f, ":{}", self.port),
            Some(h) if h.contains(':') => write!(f, "[{h}]:{}", self.port),
            Some(h) => write!(f, "{h}:{}", self.port),
        }
    }
}

/// `host:port`, `[v6]:port` or `:port` (every interface). Port 0 picks a
/// free port (tests use it).
impl std::str::FromStr for ListenAddress {
    type Err = String;

    fn from_str(raw: &str) -> Result<ListenAddress, String> {
        const EXPECTED: &str =
            "expected host:port, [v6]:port or :port, e.g. 127.0.0.1:9883 or :9883";
        let (host, port) = raw.rsplit_once(':').ok_or(EXPECTED)?;
        let port: u16 = port.parse().map_err(|_| EXPECTED)?;
        let host = if host.is_empty() {
            None
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| EXPECTED)?;
            Some(v6.to_string())
        } else if host.contains(':')
            || host.contains(char::is_whitespace)
            || host.contains('/')
            || host.starts_with('-')
        {
            return Err(EXPECTED.into());
        } else {
            Some(host.to_string())
        };
        Ok(ListenAddress { host, port })
    }
}

/// Binds the HTTP listeners `run` serves on: every address a host name
/// resolves to, and for a bare `:port` one socket for IPv6 and IPv4 both
/// (IPv4 alone where the host has no IPv6).
pub async fn bind(addresses: &[ListenAddress]) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = Vec::new();
    for address in addresses {
        let fail = |why| BindError {
            addr: address.to_string(),
            why,
        };
        let resolved: Vec<SocketAddr> = match &address.host {
            None => {
                let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), address.port);
                match listen(any, true) {
                    Ok(l) => listeners.push(l),
                    Err(_) => listeners.push(
                        listen(SocketAddr::from(([0, 0, 0, 0], address.port)), false)
                            .map_err(fail)?,
                    ),
                }
                continue;
            }
            Some(host) => tokio::net::lookup_host((host.as_str(), address.port))
                .await
                .map_err(fail)?
                .collect(),
        };
        let mut seen = Vec::new();
        for addr in resolved {
            if !seen.contains(&addr) {
                seen.push(addr);
                listeners.push(listen(addr, false).map_err(fail)?);
            }
        }
    }
    Ok(listeners)
}

/// Why an address could not be listened on.
#[derive(Debug, thiserror::Error)]
// the I/O error is part of the message, not a source: a source would be
// printed a second time by `{:#}`
#[error("cannot listen on {addr}: {why}")]
pub struct BindError {
    pub addr: String,
    pub why: std::io::Error,
}

/// One listening socket; `dual_stack` accepts IPv4 on an IPv6 socket too.
fn listen(addr: SocketAddr, dual_stack: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(s: &str) -> Result<ListenAddress, String> {
        s.parse()
    }

    #[test]
    fn addresses_parse_and_print_as_given() {
        let at = |host: Option<&str>, port| ListenAddress {
            host: host.map(String::from),
            port,
        };
        assert_eq!(address(":9883").unwrap(), at(None, 9883));
        assert_eq!(address("[::1]:1").unwrap(), at(Some("::1"), 1));
        assert_eq!(
            address("exporter.local:9883").unwrap(),
            at(Some("exporter.local"), 9883)
        );
        assert_eq!(address("[::1]:1").unwrap().to_string(), "[::1]:1");
        assert_eq!(address(":2").unwrap().to_string(), ":2");
        for bad in ["9883", "::1:9883", "[x]:1", "a b:1", "h:99999", "h:"] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
