//! The web config's `basic_auth_users`: Basic credentials checked against
//! bcrypt hashes, with good ones remembered.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Checks Basic credentials against bcrypt hashes. bcrypt is slow on
/// purpose (about 90 ms at cost 10), so good credentials are remembered and
/// a scrape every few seconds pays it once; only good ones are, so a flood
/// of wrong passwords cannot push Prometheus's out. The cache key includes
/// the hash, so a changed user is checked afresh.
#[derive(Default)]
pub struct Authenticator {
    good: Mutex<BTreeMap<(String, String), String>>,
}

/// Most good credentials remembered; the cache starts over when full.
const AUTH_CACHE: usize = 64;
/// bcrypt of "fakepassword": compared for unknown users too, so a timing
/// difference does not tell which users exist.
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// The user and password of a `Basic` `Authorization` header value.
pub fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(authorization?.strip_prefix("Basic ")?.trim())
        .ok()?;
    let pair = String::from_utf8(raw).ok()?;
    let (user, password) = pair.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Compares in time that depends on the lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Authenticator {
    /// Whether these credentials were admitted before with the user's
    /// current hash: the answer without bcrypt.
    pub fn known_good(&self, users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
        let Some(hash) = users.get(user) else {
            return false;
        };
        self.good
            .lock()
            .ok()
            .and_then(|good| {
                good.get(&(user.to_string(), hash.clone()))
                    .map(|p| same(p, password))
            })
            .unwrap_or(false)
    }

    /// Checks the credentials with bcrypt (slow: call it off the async
    /// workers, and bounded), remembering them if good.
    pub fn verify(&self, users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
        let known = users.get(user);
        let hash = known.map_or(FAKE_HASH, String::as_str);
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if ok {
            if let Ok(mut good) = self.good.lock() {
                if good.len() >= AUTH_CACHE {
                    good.clear();
                }
                good.insert((user.to_string(), hash.to_string()), password.to_string());
            }
        }
        ok
    }

    /// Whether the `Authorization` header value admits a request: the cache,
    /// else bcrypt (blocking).
    pub fn check(&self, users: &BTreeMap<String, String>, authorization: Option<&str>) -> bool {
        let Some((user, password)) = basic_credentials(authorization) else {
            return false;
        };
        self.known_good(users, &user, &password) || self.verify(users, &user, &password)
    }
}
