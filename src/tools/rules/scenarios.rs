//! Week-long promtool scenarios for the pages: a fleet's scrapes every 30 s
//! over 8 days, generated from a seeded Poisson process, then checked
//! through the `ALERTS` series Prometheus records.
//!
//! Each scenario asserts exact figures, so a failure prints the one that
//! moved: how many evaluations fired during a storm (every one from 2
//! minutes after its start to its end), or how many fired in a quiet week
//! (none). The shapes are those an on-call engineer meets: a storm at 10x a
//! day/night baseline, a storm that lasts a day, a storm two hours after
//! install, too_many_connection from none to 20 a minute, and quiet weeks
//! (steady and high, a 10x day/night cycle with 90-minute ramps, 2x bumps of
//! 10 minutes, a tiny fleet with clusters of 5 events, a single takeover).

use std::fmt::Write as _;

use super::{q, RulesOptions};

/// Seconds between scrapes.
pub const SCRAPE: u64 = 30;
const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same series on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A Poisson draw with mean `lambda` (normal approximation above 50).
    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 50.0 {
            let (u, v) = (self.unit(), self.unit());
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
        }
        let limit = (-lambda).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p < limit {
                return k;
            }
            k += 1;
        }
    }
}

/// A fleet's day: `night` events/s until 06:00, a 90-minute ramp to `day`,
/// `day` until 18:00, a 90-minute ramp back.
pub fn day_night(t: u64, night: f64, day: f64) -> f64 {
    let h = (t % DAY) as f64 / HOUR as f64;
    match h {
        h if h < 6.0 => night,
        h if h < 7.5 => night + (day - night) * (h - 6.0) / 1.5,
        h if h < 18.0 => day,
        h if h < 19.5 => day - (day - night) * (h - 18.0) / 1.5,
        _ => night,
    }
}

/// A counter scraped every 30 s for `len` seconds, at `rate(t)` events/s.
fn counter(len: u64, seed: u64, rate: impl Fn(u64) -> f64) -> String {
    let mut rng = Rng(seed);
    let mut total = 0u64;
    let mut out = String::new();
    for i in 0..len / SCRAPE {
        let t = i * SCRAPE;
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{total}");
        total += rng.poisson(rate(t) * SCRAPE as f64);
    }
    out
}

/// One counter of a scenario: its reason and its events/s at a time.
type Series = (&'static str, Box<dyn Fn(u64) -> f64>);

/// What a scenario feeds and expects.
pub struct Scenario {
    pub name: String,
    /// Reason of the counter, its events/s at t, and the seed.
    series: Vec<Series>,
    len: u64,
    /// `Some((alert, reason, start, end))`: a storm that must page within 2
    /// minutes and keep firing to its end; `None`: nothing may page.
    storm: Option<(&'static str, &'static str, u64, u64)>,
}

/// The scenarios of `rules --format promtool-tests`, for a seed. Storms
/// start at a time of day drawn from the seed too, so other seeds give
/// other shapes.
pub fn scenarios(seed: u64) -> Vec<Scenario> {
    let mut rng = Rng(seed ^ 0x5EED);
    // a storm start within the day, on a 30 s scrape
    let mut at = |day: u64| day * DAY + (rng.next() % (DAY / SCRAPE)) * SCRAPE;
    let keepalive = "keepalive_timeout";
    let storm_1h = at(7);
    let storm_1d = at(4);
    let tmc = at(3);
    let base = |t| day_night(t, 0.2, 2.0);
    let mut list = vec![
        Scenario {
            name: "a 10x keepalive_timeout storm of an hour on a day/night fleet".into(),
            series: vec![(
                keepalive,
                Box::new(move |t| {
                    base(t)
                        * if (storm_1h..storm_1h + HOUR).contains(&t) {
                            10.0
                        } else {
                            1.0
                        }
                }),
            )],
            len: storm_1h + 2 * HOUR,
            storm: Some((
                "MQTTKeepaliveTimeoutSpike",
                keepalive,
                storm_1h,
                storm_1h + HOUR,
            )),
        },
        Scenario {
            name: "a 10x keepalive_timeout storm that lasts a day".into(),
            series: vec![(
                keepalive,
                Box::new(move |t| {
                    base(t)
                        * if (storm_1d..storm_1d + DAY).contains(&t) {
                            10.0
                        } else {
                            1.0
                        }
                }),
            )],
            len: storm_1d + DAY + HOUR,
            storm: Some((
                "MQTTKeepaliveTimeoutSpike",
                keepalive,
                storm_1d,
                storm_1d + DAY,
            )),
        },
        Scenario {
            name: "a 10x keepalive_timeout storm two hours after install".into(),
            series: vec![(
                keepalive,
                Box::new(|t| {
                    if (2 * HOUR..3 * HOUR).contains(&t) {
                        10.0
                    } else {
                        1.0
                    }
                }),
            )],
            len: 4 * HOUR,
            storm: Some(("MQTTKeepaliveTimeoutSpike", keepalive, 2 * HOUR, 3 * HOUR)),
        },
        Scenario {
            name: "too_many_connection from none to 20 a minute".into(),
            series: vec![
                (keepalive, Box::new(base)),
                (
                    "too_many_connection",
                    Box::new(move |t| {
                        if (tmc..tmc + HOUR).contains(&t) {
                            1.0 / 3.0
                        } else {
                            0.0
                        }
                    }),
                ),
            ],
            len: tmc + 2 * HOUR,
            storm: Some((
                "MQTTTooManyConnections",
                "too_many_connection",
                tmc,
                tmc + HOUR,
            )),
        },
    ];
    let quiet = |name: &str, series: Vec<Series>| Scenario {
        name: name.into(),
        series,
        len: 8 * DAY,
        storm: None,
    };
    // tiny fleet: 5 disconnects in one minute, 40 times in the week
    let clusters: Vec<u64> = (0..40).map(|_| rng.next() % (8 * DAY / MIN)).collect();
    list.extend([
        quiet(
            "a steady week at 50 keepalive timeouts a second",
            vec![(keepalive, Box::new(|_| 50.0))],
        ),
        quiet(
            "a week of a 10x day/night cycle with 90-minute ramps",
            vec![(keepalive, Box::new(|t| day_night(t, 0.3, 3.0)))],
        ),
        quiet(
            "a week with 2x bumps of 10 minutes every 5 hours",
            vec![(
                keepalive,
                Box::new(|t| if t % (5 * HOUR) < 10 * MIN { 2.0 } else { 1.0 }),
            )],
        ),
        quiet(
            "a tiny fleet with clusters of 5 disconnects in a minute",
            vec![
                (
                    keepalive,
                    Box::new(move |t| {
                        if clusters.contains(&(t / MIN)) {
                            5.0 / MIN as f64
                        } else {
                            0.0
                        }
                    }),
                ),
                (
                    "too_many_connection",
                    Box::new(|t| if t == DAY { 1.0 / 30.0 } else { 0.0 }),
                ),
            ],
        ),
        quiet(
            "a single takeover in a steady week",
            vec![
                (
                    "takeovered",
                    Box::new(|t| if t == 3 * DAY { 1.0 / 30.0 } else { 0.0 }),
                ),
                (keepalive, Box::new(|_| 1.0)),
            ],
        ),
    ]);
    list
}

/// One scenario as a promtool test group; `labels` are the series' own
/// (job, instance and the selector's equality matchers).
pub fn test_group(o: &RulesOptions, s: &Scenario, seed: u64, labels: &str) -> String {
    let mut out = format!(
        "  # {}\n  - interval: {SCRAPE}s\n    input_series:\n",
        s.name
    );
    for (i, (reason, rate)) in s.series.iter().enumerate() {
        let _ = writeln!(
            out,
            "      - series: {}\n        values: \"{}\"",
            q(&format!(
                "mqtt_client_disconnects_total{{{labels},reason=\"{reason}\"}}"
            )),
            counter(s.len, seed.wrapping_add(i as u64 * 7919), rate)
        );
    }
    out.push_str("    promql_expr_test:\n");
    let critical = super::selector::escape(&o.critical);
    let mut check = |expr: String, at: u64, want: Option<String>| {
        let _ = writeln!(
            out,
            "      - expr: {}\n        eval_time: {at}s\n        exp_samples:{}",
            q(&expr),
            want.map_or(" []".into(), |w| format!("\n          - {w}"))
        );
    };
    match s.storm {
        None => check(
            format!(
                "count_over_time(ALERTS{{alertstate=\"firing\",severity=\"{critical}\"}}[{}s])",
                s.len
            ),
            s.len - SCRAPE,
            None,
        ),
        Some((alert, reason, start, end)) => {
            let firing = format!("ALERTS{{alertname=\"{alert}\",alertstate=\"firing\"}}");
            // nothing before the storm
            check(format!("count_over_time({firing}[{start}s])"), start, None);
            // firing at every evaluation from 2 minutes in to its last
            // scrape; half a step more range so either end's inclusion
            // rule counts the same
            let from = start + 2 * MIN;
            let last = end - SCRAPE;
            let job = labels
                .split(',')
                .find_map(|l| l.strip_prefix("job="))
                .unwrap_or("\"\"");
            check(
                format!("count_over_time({firing}[{}s])", last - from + SCRAPE / 2),
                last,
                Some(format!(
                    "labels: {}\n            value: {}",
                    q(&format!(
                        "{{alertname=\"{alert}\",alertstate=\"firing\",category=\"{}\",job={job},\
                         reason=\"{reason}\",severity=\"{critical}\"}}",
                        category(reason)
                    )),
                    (last - from) / SCRAPE + 1
                )),
            );
            // resolved within 6 minutes after
            check(firing, end + 6 * MIN, None);
        }
    }
    out
}

fn category(reason: &str) -> &'static str {
    crate::core::reasons::Reason::all()
        .find(|r| r.as_str() == reason)
        .map_or("", |r| r.info().category)
}
