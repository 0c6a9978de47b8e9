//! Who is let in: connection admission. Connections are capped in all
//! ([`MAX_CONNECTIONS`]) and per peer address ([`MAX_CONNECTIONS_PER_PEER`],
//! an IPv6 /64 as one address), so one host cannot starve Prometheus. At
//! the overall cap the connection idle longest (no request in progress;
//! answered before or not) is closed to make room, so slow, idle or
//! kept-alive connections from many addresses lose their slots, not the
//! scraper; and a new connection must start its request within
//! [`FIRST_REQUEST_TIMEOUT`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Concurrent connections served; at the limit the oldest one without a
/// complete request is closed for a new one.
pub const MAX_CONNECTIONS: usize = 2048;
/// Concurrent connections from one peer address (an IPv6 /64 counts as one
/// address); more are closed at once, so one host cannot take every slot and
/// starve Prometheus's scrapes.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;
/// Time a new connection has to send the first byte of its first request;
/// a scraper sends it at once, so an idle socket is closed early.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The connections idle now (none of their requests in progress), the one
/// idle longest first: at the connection limit it is closed to make room,
/// whether it has been answered before or not. A connection that sent
/// nothing yet is idle from the start, so slow or idle connections from many
/// addresses lose their slots, not the scraper; and one that was answered
/// and then sits on its keep-alive slot is as evictable.
#[derive(Default)]
struct Idle {
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
}

impl Idle {
    /// A key later than every key given before.
    fn key(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn put(&self, key: u64, tx: oneshot::Sender<()>) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(key, tx);
        }
    }

    fn take(&self, key: u64) -> Option<oneshot::Sender<()>> {
        self.waiting.lock().ok()?.remove(&key)
    }

    /// Tells the connection idle longest to close; false if none is idle.
    fn evict_longest_idle(&self) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            return false;
        };
        while let Some((_, tx)) = waiting.pop_first() {
            if tx.send(()).is_ok() {
                return true;
            }
        }
        false
    }
}

/// Takes the connection out of [`Idle`] when its task ends, however it ends.
struct Leave(Arc<Proof>);

impl Drop for Leave {
    fn drop(&mut self) {
        let key = self.0.key.load(Ordering::Relaxed);
        self.0.idle.take(key);
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address held [`MAX_CONNECTIONS_PER_PEER`] already.
    PeerLimit,
    /// The server held [`MAX_CONNECTIONS`], none of them evictable.
    ConnectionLimit,
}

/// Who is let in: the connection slots in all and per peer, and the
/// connections idle now.
pub struct Admission {
    permits: Arc<Semaphore>,
    peers: Arc<Peers>,
    idle: Arc<Idle>,
}

/// An admitted connection's slots, given back when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _peer: PeerSlot,
    _leave: Leave,
}

/// An admitted connection's way to say when it is busy with a request (it
/// cannot be evicted then) and when it is idle again.
pub struct Proof {
    idle: Arc<Idle>,
    /// Its key in [`Idle`] while it is idle.
    key: AtomicU64,
    /// Its eviction sender while it is busy.
    held: Mutex<Option<oneshot::Sender<()>>>,
}

impl Proof {
    /// A request started: not evictable until it is answered.
    pub fn busy(&self) {
        let key = self.key.load(Ordering::Relaxed);
        if let Some(tx) = self.idle.take(key) {
            if let Ok(mut held) = self.held.lock() {
                *held = Some(tx);
            }
        }
    }

    /// The request was answered: idle again, the most recently idle.
    pub fn idle(&self) {
        let tx = self.held.lock().ok().and_then(|mut held| held.take());
        if let Some(tx) = tx {
            let key = self.idle.key();
            self.key.store(key, Ordering::Relaxed);
            self.idle.put(key, tx);
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            peers: Arc::default(),
            idle: Arc::default(),
        }
    }
}

impl Admission {
    /// Admits a connection from `ip`, closing the connection idle longest
    /// to make room at the limit. Returns its slots, a
    /// receiver that fires if it is evicted in turn, and its [`Proof`].
    pub async fn admit(
        &self,
        ip: IpAddr,
    ) -> Result<(Slot, oneshot::Receiver<()>, Arc<Proof>), Refused> {
        let peer = Peers::admit(&self.peers, ip).ok_or(Refused::PeerLimit)?;
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            // at the limit: the connection idle longest makes room, if
            // one is idle
            Err(_) if self.idle.evict_longest_idle() => {
                let wait = Arc::clone(&self.permits).acquire_owned();
                match tokio::time::timeout(Duration::from_millis(500), wait).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(Refused::ConnectionLimit),
                }
            }
            Err(_) => return Err(Refused::ConnectionLimit),
        };
        let (tx, evicted) = oneshot::channel();
        let key = self.idle.key();
        self.idle.put(key, tx);
        let proof = Arc::new(Proof {
            idle: Arc::clone(&self.idle),
            key: AtomicU64::new(key),
            held: Mutex::new(None),
        });
        let slot = Slot {
            _permit: permit,
            _peer: peer,
            _leave: Leave(Arc::clone(&proof)),
        };
        Ok((slot, evicted, proof))
    }
}

/// Waits until the connection's first request starts (its first byte
/// arrives) or [`FIRST_REQUEST_TIMEOUT`] passes; false on timeout or EOF.
pub async fn first_request_arrives(stream: &tokio::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(FIRST_REQUEST_TIMEOUT, stream.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Connections held now per peer address.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection of a peer; gives its slot back when dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    addr: IpAddr,
}

impl Peers {
    /// Admits one more connection from `ip` unless it holds the most allowed.
    fn admit(peers: &Arc<Peers>, ip: IpAddr) -> Option<PeerSlot> {
        let addr = peer_key(ip);
        let mut held = peers.0.lock().ok()?;
        let n = held.entry(addr).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: Arc::clone(peers),
            addr,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.peers.0.lock() {
            if let Some(n) = held.get_mut(&self.addr) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&self.addr);
                }
            }
        }
    }
}

/// The address a peer is limited by: IPv4 as it is, IPv6 by its /64 (one
/// host can use a whole /64), an IPv4-mapped IPv6 address as IPv4.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}
