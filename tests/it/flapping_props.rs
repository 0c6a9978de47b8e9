//! Property tests for the flapping detector against a naive reference model
//! that keeps every event.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_disconnect_exporter::core::flapping::{Detector, FlapKind, Settings};
use proptest::prelude::*;

const TAKEOVER_WINDOW: i64 = 300_000;
const RECONNECT_WINDOW: i64 = 60_000;

fn settings(max_tracked: usize) -> Settings {
    Settings {
        takeover_window_ms: TAKEOVER_WINDOW,
        takeover_threshold: 3,
        reconnect_window_ms: RECONNECT_WINDOW,
        reconnect_threshold: 4,
        max_tracked,
        max_peers: 8,
        max_skew_ms: 60_000,
    }
}

/// (client index, takeover?, time offset in ms)
fn events() -> impl Strategy<Value = Vec<(u8, bool, i64)>> {
    prop::collection::vec((0u8..6, any::<bool>(), 0i64..900_000), 0..120)
}

/// Keeps every event; flapping = count in (now - window, now] >= threshold.
#[derive(Default)]
struct Model {
    times: BTreeMap<(u8, FlapKind), Vec<i64>>,
    now: i64,
}

impl Model {
    fn observe(&mut self, client: u8, takeover: bool, t: i64) {
        self.now = self.now.max(t);
        self.times
            .entry((client, FlapKind::Reconnect))
            .or_default()
            .push(t);
        if takeover {
            self.times
                .entry((client, FlapKind::Takeover))
                .or_default()
                .push(t);
        }
    }

    fn flapping(&self) -> BTreeMap<(String, &'static str), usize> {
        let mut out = BTreeMap::new();
        for ((client, kind), times) in &self.times {
            let (window, threshold) = match kind {
                FlapKind::Takeover => (TAKEOVER_WINDOW, 3),
                FlapKind::Reconnect => (RECONNECT_WINDOW, 4),
            };
            let n = times
                .iter()
                .filter(|&&t| t > self.now - window && t <= self.now)
                .count();
            if n >= threshold {
                out.insert((format!("client-{client}"), kind.as_str()), n);
            }
        }
        // a client flapping by takeover is reported by takeover only
        let takeovers: BTreeSet<String> = out
            .keys()
            .filter(|(_, k)| *k == "takeover")
            .map(|(id, _)| id.clone())
            .collect();
        out.retain(|(id, k), _| *k == "takeover" || !takeovers.contains(id));
        out
    }
}

fn detector_view(d: &Detector) -> BTreeMap<(String, &'static str), usize> {
    d.flapping_clients()
        .into_iter()
        .map(|c| ((c.clientid, c.kind.as_str()), c.count))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// After every event and clock advance, the detector flags exactly the
    /// clients the naive model flags, with the same counts.
    #[test]
    fn agrees_with_the_naive_model(events in events()) {
        let base = 1_700_000_000_000i64;
        let mut d = Detector::new(settings(1_000_000));
        let mut model = Model { now: i64::MIN, ..Model::default() };
        for (client, takeover, offset) in events {
            let t = base + offset;
            let id = format!("client-{client}");
            d.observe_disconnect(&id, takeover, Some("10.0.0.1:1"), t);
            model.observe(client, takeover, t);
            d.advance(t);
            let want = model.flapping();
            prop_assert_eq!(detector_view(&d), want.clone());
            for kind in FlapKind::ALL {
                let n = want.keys().filter(|(_, k)| *k == kind.as_str()).count();
                prop_assert_eq!(d.flapping(kind), n);
            }
        }
    }

    /// One event with any timestamp at all (the year 2100, 1970, i64's
    /// ends) from one client never changes the verdict for any other client:
    /// neither what each event entered nor who is flapping with what count,
    /// before and after the clock advances.
    #[test]
    fn one_clients_timestamp_never_moves_another_clients_window(
        events in events(),
        outlier_at in 0usize..120,
        outlier_t in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(4_102_444_800_000i64)],
        outlier_takeover in any::<bool>(),
    ) {
        let base = 1_700_000_000_000i64;
        let mut plain = Detector::new(settings(1_000_000));
        let mut skewed = Detector::new(settings(1_000_000));
        let others = |d: &Detector| -> BTreeMap<(String, &'static str), usize> {
            detector_view(d).into_iter().filter(|((id, _), _)| id != "outlier").collect()
        };
        for (i, (client, takeover, offset)) in events.iter().enumerate() {
            if i == outlier_at {
                skewed.observe_disconnect("outlier", outlier_takeover, None, outlier_t);
            }
            let t = base + offset;
            let id = format!("client-{client}");
            let a = plain.observe_disconnect(&id, *takeover, None, t);
            let b = skewed.observe_disconnect(&id, *takeover, None, t);
            prop_assert_eq!(a, b, "event {} of {}", i, id);
            prop_assert_eq!(others(&plain), others(&skewed));
        }
        for now in [base + 450_000, base + 900_000, base + 1_300_000] {
            plain.advance(now);
            skewed.advance(now);
            prop_assert_eq!(others(&plain), others(&skewed));
            prop_assert_eq!(plain.top(1000).into_iter().filter(|c| c.clientid != "outlier").collect::<Vec<_>>(),
                skewed.top(1000).into_iter().filter(|c| c.clientid != "outlier").collect::<Vec<_>>());
        }
    }

    /// The bounded top list is the head of the full sorted list, with the
    /// same counts, whatever the clock did since the flaps started.
    #[test]
    fn top_is_the_head_of_the_full_list(events in events(), advances in prop::collection::vec(0i64..1_200_000, 1..6), n in 1usize..8) {
        let base = 1_700_000_000_000i64;
        let mut d = Detector::new(settings(1_000_000));
        for (client, takeover, offset) in events {
            d.observe_disconnect(&format!("client-{client}"), takeover, None, base + offset);
        }
        let mut advances = advances;
        advances.sort_unstable();
        for a in advances {
            d.advance(base + a);
            let full = d.flapping_clients();
            let top = d.top(n);
            prop_assert_eq!(&top[..], &full[..n.min(full.len())]);
            for kind in FlapKind::ALL {
                let listed = d.top(usize::MAX).iter().filter(|c| c.kind == kind).count();
                prop_assert_eq!(d.flapping(kind), listed);
            }
        }
    }

    /// One takeover per client ID never flags, however many clients.
    #[test]
    fn a_single_takeover_never_flags(times in prop::collection::vec(0i64..10_000_000, 1..300)) {
        let mut d = Detector::new(settings(1_000_000));
        for (i, t) in times.iter().enumerate() {
            let e = d.observe_disconnect(&format!("dev-{i}"), true, None, *t);
            prop_assert!(!e.takeover);
        }
        prop_assert_eq!(d.flapping(FlapKind::Takeover), 0);
    }

    /// Everything clears once the window has passed the newest event.
    #[test]
    fn clears_after_the_window(events in events()) {
        let mut d = Detector::new(settings(1_000_000));
        let mut newest = 0;
        for (client, takeover, t) in events {
            d.observe_disconnect(&format!("c{client}"), takeover, None, t);
            newest = newest.max(t);
        }
        d.advance(newest + TAKEOVER_WINDOW);
        prop_assert_eq!(d.flapping(FlapKind::Takeover), 0);
        prop_assert_eq!(d.flapping(FlapKind::Reconnect), 0);
        prop_assert!(d.flapping_clients().is_empty());
    }

    /// The client table never exceeds the cap, and evictions account for the rest.
    #[test]
    fn stays_under_the_cap(ids in prop::collection::vec(0u32..500, 1..400), cap in 1usize..50) {
        let mut d = Detector::new(settings(cap));
        let mut distinct = BTreeSet::new();
        for (i, id) in ids.iter().enumerate() {
            d.observe_disconnect(&id.to_string(), i % 3 == 0, Some("p"), i as i64);
            distinct.insert(*id);
            prop_assert!(d.tracked() <= cap);
        }
        prop_assert!(d.tracked() as u64 + d.evicted() >= distinct.len() as u64);
    }
}

#[test]
fn a_million_distinct_ids_stay_within_the_cap() {
    let cap = 100_000;
    let mut d = Detector::new(settings(cap));
    for i in 0..1_000_000u32 {
        d.observe_disconnect(&format!("device-{i:07}"), i % 10 == 0, None, i64::from(i));
    }
    assert_eq!(d.tracked(), cap);
    assert_eq!(d.evicted(), 900_000);
    assert_eq!(d.flapping(FlapKind::Takeover), 0);
}
