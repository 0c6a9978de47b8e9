//! Label values made from input: a client ID (or a node name) bounded so
//! that one device cannot break a scrape. A leaf: the metrics and the top
//! lists both use it, and it uses neither.

/// Longest `clientid` label value kept whole, in characters.
pub const MAX_LABEL_CHARS: usize = 128;

/// A client ID as a label value: IDs longer than [`MAX_LABEL_CHARS`] keep
/// their first 128 characters plus `~` and a hash of the whole ID, so one
/// device with a huge ID cannot break a scrape that limits label length,
/// and two long IDs that share a prefix stay apart.
pub fn label_value(clientid: &str) -> String {
    match clientid.char_indices().nth(MAX_LABEL_CHARS) {
        None => clientid.to_string(),
        Some((end, _)) => {
            // FNV-1a: stable across runs and processes, unlike a seeded hash
            let hash = clientid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("{}~{:016x}", &clientid[..end], hash)
        }
    }
}
