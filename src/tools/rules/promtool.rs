//! promtool unit tests for the rules (`rules --format promtool-tests`):
//! each alert fires on its pattern, with its labels and annotations exactly,
//! and stays quiet on a steady baseline, a steady high rate, a single event
//! and three isolated events; each recording rule records the right rate.
//!
//! The test series carry `job="mqtt-disconnect-exporter"`,
//! `instance="exp:9883"` and the selector's equality matchers, so the tests
//! also run against rules made for another job; a selector with regex or
//! negative matchers needs series of its own.

use std::fmt::Write as _;

use super::selector::escape;
use super::{
    alerts, q, recording_rules, scenarios, About, Alert, Kind, RulesOptions, Watch, RATE_1H,
    RATE_5M,
};

/// The seed of the shipped week-long scenarios.
pub const SEED: u64 = 1;

/// The labels of every test series, in order.
fn base_labels(o: &RulesOptions) -> Vec<(String, String)> {
    let mut labels = vec![
        ("job".to_string(), "mqtt-disconnect-exporter".to_string()),
        ("instance".to_string(), "exp:9883".to_string()),
    ];
    for (name, value) in o.selector.equality_labels() {
        match labels.iter_mut().find(|(n, _)| *n == name) {
            Some(label) => label.1 = value,
            None => labels.push((name, value)),
        }
    }
    labels
}

fn matchers(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn yaml_labels(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(n, v)| format!("{n}: {}", q(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One test: what, input series, eval time, the labels it fires with (None:
/// it must not fire), `$value` as templated, the top devices as templated.
struct Case {
    what: &'static str,
    input: Vec<(String, String)>,
    at: &'static str,
    fires: Option<Vec<(String, String)>>,
    value: &'static str,
    devices: String,
}

fn quiet(what: &'static str, input: Vec<(String, String)>, at: &'static str) -> Case {
    Case {
        what,
        input,
        at,
        fires: None,
        value: "",
        devices: String::new(),
    }
}

fn cases(a: &Alert, o: &RulesOptions) -> Vec<Case> {
    let base = base_labels(o);
    let m = matchers(&base);
    let job = base
        .iter()
        .find(|(n, _)| n == "job")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let pick = |names: &[&str]| -> Vec<(String, String)> {
        base.iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .cloned()
            .collect()
    };
    let on_job = pick(&["job"]);
    let on_instance = pick(&["job", "instance"]);
    let reason = a.reason.map(|r| r.as_str()).unwrap_or("");
    let s = |name: &str, extra: &str| {
        if extra.is_empty() {
            format!("{name}{{{m}}}")
        } else {
            format!("{name}{{{m},{extra}}}")
        }
    };
    let series = s(
        "mqtt_client_disconnects_total",
        &format!("reason=\"{reason}\""),
    );
    let top = |id: &str| {
        s(
            "mqtt_client_top_disconnects",
            &format!("reason=\"{reason}\",clientid=\"{id}\""),
        )
    };
    let devices = |mut input: Vec<(String, String)>| {
        if a.names_devices {
            input.push((top("gw-1"), "9x100".into()));
            input.push((top("gw-2"), "4x100".into()));
            input.push((
                s(
                    "mqtt_network_top_disconnects",
                    &format!("reason=\"{reason}\",network=\"198.51.100.0/24\""),
                ),
                "1250x100".into(),
            ));
            input.push((
                s(
                    "mqtt_node_disconnects_total",
                    &format!("reason=\"{reason}\",node=\"emqx@10.0.0.1\""),
                ),
                "0+600x100".into(),
            ));
            // every connection that ended lived between 300 and 360 s
            for (le, values) in [("300", "0x100"), ("360", "0+10x100"), ("+Inf", "0+10x100")] {
                input.push((
                    s(
                        "mqtt_client_connection_duration_seconds_bucket",
                        &format!("reason=\"{reason}\",le=\"{le}\""),
                    ),
                    values.into(),
                ));
            }
        }
        input
    };
    let details = format!(
        "Details: {}://exp:9883/api/v1/top?reason={}",
        o.exporter_scheme,
        a.reason.map(|r| r.as_str()).unwrap_or("")
    );
    // every connection lived 300-360 s: the median is in that bucket
    let shown = if a.names_devices {
        format!(
            "gw-1 (9), gw-2 (4). Top source networks: 198.51.100.0/24 (1250). \
             Broker nodes: 100% on emqx@10.0.0.1. Connections that ended lived: \
             median between 5m and 6m. {details}"
        )
    } else {
        String::new()
    };
    let no_network = format!(
        ". Top source networks: {}. Broker nodes: {}. \
        Connections that ended lived: {}. {details}",
        super::NO_NETWORK,
        super::NO_NODE,
        super::NO_LIFETIME
    );
    let up = s("up", "");
    let broker_up = s("mqtt_exporter_broker_up", "");
    let received = s(
        "mqtt_exporter_events_received_total",
        "kind=\"disconnected\"",
    );
    let errors = s("mqtt_exporter_event_errors_total", "error=\"invalid_json\"");
    let fires = |what, input, at, labels: &Vec<(String, String)>, value| Case {
        what,
        input,
        at,
        fires: Some(labels.clone()),
        value,
        devices: shown.clone(),
    };
    let isolated = || vec![(series.clone(), "0x20 1x20 2x20 3x20".to_string())];
    let single = || vec![(series.clone(), "0x30 1x60".to_string())];
    match (&a.kind, a.about) {
        (Kind::Spike { .. }, _) => vec![
            fires(
                "storm after a quiet hour",
                devices(vec![(series.clone(), "0+1x70 70+600x20".into())]),
                "90m",
                &on_job,
                "10",
            ),
            Case {
                // one node of two holds most of the storm: its share first
                devices: if a.names_devices {
                    format!(
                        "no single device stands out: 0 devices, at most {} disconnects each. \
                         Top source networks: {}. Broker nodes: 80% on emqx@n2, 20% on emqx@n1 \
                         (of 2 nodes). Connections that ended lived: {}. {details}",
                        crate::core::top::STANDOUT_MIN - 1,
                        super::NO_NETWORK,
                        super::NO_LIFETIME
                    )
                } else {
                    String::new()
                },
                ..fires(
                    "a storm on one node",
                    vec![
                        (series.clone(), "0+1x70 70+600x20".into()),
                        (
                            s(
                                "mqtt_node_disconnects_total",
                                &format!("reason=\"{reason}\",node=\"emqx@n2\""),
                            ),
                            "0+480x90".into(),
                        ),
                        (
                            s(
                                "mqtt_node_disconnects_total",
                                &format!("reason=\"{reason}\",node=\"emqx@n1\""),
                            ),
                            "0+120x90".into(),
                        ),
                    ],
                    "90m",
                    &on_job,
                    "10",
                )
            },
            Case {
                devices: if a.names_devices {
                    format!(
                        "no single device stands out: 1234 devices, \
                        at most {} disconnects each{no_network}",
                        crate::core::top::STANDOUT_MIN - 1
                    )
                } else {
                    String::new()
                },
                ..fires(
                    "storm of one-off devices",
                    vec![
                        (series.clone(), "0+1x70 70+600x20".into()),
                        (
                            s(
                                "mqtt_client_disconnecting_clients",
                                &format!("reason=\"{reason}\""),
                            ),
                            "1234x90".into(),
                        ),
                    ],
                    "90m",
                    &on_job,
                    "10",
                )
            },
            Case {
                // a rate below one a second reads in disconnects a minute
                devices: if a.names_devices {
                    format!(
                        "no single device stands out: 0 devices, \
                        at most {} disconnects each{no_network}",
                        crate::core::top::STANDOUT_MIN - 1
                    )
                } else {
                    String::new()
                },
                ..fires(
                    "a slow storm, read in disconnects a minute",
                    vec![(series.clone(), "0+1x70 70+30x20".into())],
                    "90m",
                    &on_job,
                    "0.5",
                )
            },
            Case {
                devices: if a.names_devices {
                    format!(
                        "too many devices at once to single one out: 2000000 devices in the window \
                         (more than the exporter's top-devices bound holds; \
                        see the runbook){no_network}"
                    )
                } else {
                    String::new()
                },
                ..fires(
                    "storm of more devices than the top list can tell apart",
                    vec![
                        (series.clone(), "0+1x70 70+600x20".into()),
                        (
                            s(
                                "mqtt_client_disconnecting_clients",
                                &format!("reason=\"{reason}\""),
                            ),
                            "2000000x90".into(),
                        ),
                        (
                            s(
                                "mqtt_exporter_top_saturated",
                                &format!("reason=\"{reason}\""),
                            ),
                            "1x90".into(),
                        ),
                    ],
                    "90m",
                    &on_job,
                    "10",
                )
            },
            quiet(
                "steady high rate",
                vec![(series.clone(), "0+600x100".into())],
                "95m",
            ),
            quiet("three isolated events", isolated(), "75m"),
            quiet("a single event", single(), "40m"),
        ],
        (Kind::Sustained { min, .. }, _) => vec![
            fires(
                "sustained occurrences",
                devices(vec![(series.clone(), format!("0x10 0+{min}x30"))]),
                "25m",
                &on_job,
                if *min == 3 { "15" } else { "100" },
            ),
            quiet("three isolated events", isolated(), "75m"),
            quiet("a single event", single(), "40m"),
            quiet(
                "steady baseline of other reasons",
                vec![
                    (
                        s("mqtt_client_disconnects_total", "reason=\"tcp_closed\""),
                        "0+600x60".into(),
                    ),
                    (series.clone(), "0x60".into()),
                ],
                "55m",
            ),
        ],
        (Kind::Expr(_), About::Flapping(kind)) => {
            let kind = kind.as_str();
            let gauge = s("mqtt_flapping_clients", &format!("kind=\"{kind}\""));
            let client = |id: &str| {
                s(
                    "mqtt_client_flapping",
                    &format!("clientid=\"{id}\",kind=\"{kind}\""),
                )
            };
            vec![
                // the ticket names the client IDs, most events first
                Case {
                    devices: "shared-7, shared-2".into(),
                    ..fires(
                        "flapping clients for a while",
                        vec![
                            (gauge.clone(), "0x10 2x30".into()),
                            (client("shared-2"), "0x10 4x30".into()),
                            (client("shared-7"), "0x10 9x30".into()),
                        ],
                        "35m",
                        &on_job,
                        "2",
                    )
                },
                // listed a tick after the gauge: the ticket says where to look
                Case {
                    devices: super::NO_FLAPPING_IDS.into(),
                    ..fires(
                        "flapping clients not listed yet",
                        vec![(gauge.clone(), "0x10 2x30".into())],
                        "35m",
                        &on_job,
                        "2",
                    )
                },
                quiet(
                    "a single takeover never flags, so the gauge stays 0",
                    vec![
                        (gauge.clone(), "0x60".into()),
                        (
                            s("mqtt_client_disconnects_total", "reason=\"takeovered\""),
                            "0x30 1x30".into(),
                        ),
                    ],
                    "50m",
                ),
                quiet(
                    "a brief flap",
                    vec![(gauge.clone(), "0x10 1x3 0x40".into())],
                    "40m",
                ),
            ]
        }
        (Kind::Expr(_), About::Exporter(Watch::Down)) => vec![
            fires(
                "scrapes fail",
                vec![(up.clone(), "1x10 0x20".into())],
                "25m",
                &base,
                "",
            ),
            quiet(
                "a single failed scrape",
                vec![(up.clone(), "1x10 0 1x20".into())],
                "25m",
            ),
        ],
        (Kind::Expr(_), About::Exporter(Watch::Absent)) => vec![
            fires(
                "only another job's target is there",
                vec![(
                    up.replace(&format!("job=\"{job}\""), "job=\"other\""),
                    "1x30".into(),
                )],
                "20m",
                &o.selector.equality_labels(),
                "",
            ),
            quiet(
                "a target that is down is not absent",
                vec![(up.clone(), "0x30".into())],
                "20m",
            ),
            quiet(
                "absent for less than 15 minutes",
                vec![(broker_up.clone(), "1x30".into())],
                "10m",
            ),
        ],
        (Kind::Expr(_), About::Exporter(Watch::BrokerDisconnected)) => vec![
            fires(
                "broker session down",
                vec![(broker_up.clone(), "1x10 0x20".into())],
                "25m",
                &base,
                "",
            ),
            quiet(
                "a short reconnect",
                vec![(broker_up.clone(), "1x10 0x2 1x20".into())],
                "25m",
            ),
        ],
        (Kind::Expr(_), About::Exporter(Watch::NoEvents)) => vec![
            fires(
                "connected but silent",
                vec![
                    (received.clone(), "0+10x30 300x60".into()),
                    (broker_up.clone(), "1x90".into()),
                ],
                "85m",
                &on_instance,
                "",
            ),
            quiet(
                "steady events",
                vec![
                    (received.clone(), "0+10x90".into()),
                    (broker_up.clone(), "1x90".into()),
                ],
                "85m",
            ),
        ],
        (Kind::Expr(_), About::Exporter(Watch::EventErrors)) => vec![
            fires(
                "many rejected events",
                vec![
                    (errors.clone(), "0+10x60".into()),
                    (received.clone(), "0+100x60".into()),
                ],
                "40m",
                &on_instance,
                "9.091%",
            ),
            quiet(
                "three isolated errors",
                vec![
                    (errors.clone(), "0x20 1x20 2x20 3x20".into()),
                    (received.clone(), "0+100x80".into()),
                ],
                "75m",
            ),
        ],
        // an alert without cases fails the drift test: its file lacks it
        (Kind::Expr(_), About::Reason) => Vec::new(),
    }
}

/// A description as Prometheus templates it for the test series.
fn render(a: &Alert, o: &RulesOptions, case: &Case, job: &str) -> String {
    let mut text = a.description(o);
    let rate = case
        .value
        .parse::<f64>()
        .map(super::human_rate)
        .unwrap_or_default();
    text = text.replace(super::RATE, &rate);
    if let Some(template) = a.devices_template(o) {
        text = text.replace(&template, &case.devices);
    }
    if let Some(template) = a.flapping_template(o) {
        text = text.replace(&template, &case.devices);
    }
    text.replace("{{ $value | humanizePercentage }}", case.value)
        .replace("{{ $value | humanize }}", case.value)
        .replace("{{ $value }}", case.value)
        .replace(
            "{{ $labels.reason }}",
            a.reason.map(|r| r.as_str()).unwrap_or(""),
        )
        .replace("{{ $labels.job }}", job)
        .replace("{{ $labels.instance }}", "exp:9883")
}

fn tests(o: &RulesOptions, seed: Option<u64>) -> String {
    let mut out = String::from(
        "# Generated by `mqtt-disconnect-exporter rules --format promtool-tests`;\n\
         # run with `promtool test rules`.\n\
         rule_files:\n  - ../mqtt-disconnect-exporter.rules.yml\n\
         evaluation_interval: 30s\ntests:\n",
    );
    let base = base_labels(o);
    let job = base
        .iter()
        .find(|(n, _)| n == "job")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // the recording rules: a rate of 1/s per reason, summed over instances
    let m = matchers(&base);
    let other = m.replace("instance=\"exp:9883\"", "instance=\"exp2:9883\"");
    out.push_str("  # recording rules: per-reason rates summed over instances\n");
    out.push_str("  - interval: 1m\n    input_series:\n");
    for labels in [&m, &other] {
        let _ = writeln!(
            out,
            "      - series: {}\n        values: \"0+30x120\"",
            q(&format!(
                "mqtt_client_disconnects_total{{{labels},reason=\"tcp_closed\"}}"
            ))
        );
    }
    out.push_str("    promql_expr_test:\n");
    let recorded: Vec<&str> = recording_rules(o).iter().map(|(r, _)| *r).collect();
    for record in [RATE_5M, RATE_1H] {
        debug_assert!(recorded.contains(&record));
        let _ = writeln!(
            out,
            "      - expr: {record}\n        eval_time: 100m\n        exp_samples:\n          \
             - labels: {}\n            value: 1",
            q(&format!("{record}{{job=\"{job}\",reason=\"tcp_closed\"}}"))
        );
    }
    for a in alerts() {
        let severity = o.severity(a.severity()).to_string();
        for case in cases(&a, o) {
            let _ = writeln!(out, "  # {}: {}", a.name, case.what);
            out.push_str("  - interval: 1m\n    input_series:\n");
            for (name, values) in &case.input {
                let _ = writeln!(
                    out,
                    "      - series: {}\n        values: {}",
                    q(name),
                    q(values)
                );
            }
            let _ = writeln!(
                out,
                "    alert_rule_test:\n      - eval_time: {}\n        alertname: {}",
                case.at, a.name
            );
            let Some(labels) = &case.fires else {
                out.push_str("        exp_alerts: []\n");
                continue;
            };
            let mut labels = labels.clone();
            labels.push(("severity".into(), severity.clone()));
            if let Some(r) = a.reason {
                labels.push(("reason".into(), r.as_str().into()));
                labels.push(("category".into(), r.info().category.into()));
            }
            out.push_str("        exp_alerts:\n");
            let _ = writeln!(out, "          - exp_labels: {{{}}}", yaml_labels(&labels));
            out.push_str("            exp_annotations:\n");
            let _ = writeln!(out, "              summary: {}", q(a.summary));
            let _ = writeln!(
                out,
                "              description: {}",
                q(&render(&a, o, &case, &job))
            );
            if let Some(r) = a.reason {
                let _ = writeln!(out, "              meaning: {}", q(r.info().meaning));
                let _ = writeln!(out, "              action: {}", q(r.info().action));
            }
            let _ = writeln!(out, "              runbook_url: {}", q(&o.runbook(&a)));
            if let Some(url) = a.reason.and_then(|r| o.dashboard(r)) {
                let _ = writeln!(out, "              dashboard_url: {}", q(&url));
            }
        }
    }
    if let Some(seed) = seed {
        let labels = matchers(&base);
        for scenario in scenarios::scenarios(seed) {
            out.push_str(&scenarios::test_group(o, &scenario, seed, &labels));
        }
    }
    out
}

/// [`tests_yaml`] without the week-long scenarios (seconds to run, not
/// minutes).
pub fn short_tests_yaml(o: &RulesOptions) -> String {
    tests(o, None)
}

/// The promtool test file for the rules rendered with `o`, with the
/// week-long scenarios of [`SEED`]; it expects the rule file beside it as
/// `mqtt-disconnect-exporter.rules.yml`, one level up.
pub fn tests_yaml(o: &RulesOptions) -> String {
    tests(o, Some(SEED))
}

/// The week-long scenarios of `seed` alone, as a promtool test file.
pub fn scenarios_yaml(o: &RulesOptions, seed: u64, which: impl Fn(usize) -> bool) -> String {
    let mut out = String::from(
        "rule_files:\n  - ../mqtt-disconnect-exporter.rules.yml\n\
         evaluation_interval: 30s\ntests:\n",
    );
    let labels = matchers(&base_labels(o));
    for (i, s) in scenarios::scenarios(seed).iter().enumerate() {
        if which(i) {
            out.push_str(&scenarios::test_group(o, s, seed, &labels));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_has_a_case_that_fires_and_one_that_does_not() {
        let o = RulesOptions::default();
        for a in alerts() {
            let cases = cases(&a, &o);
            assert!(cases.iter().any(|c| c.fires.is_some()), "{}", a.name);
            assert!(cases.iter().any(|c| c.fires.is_none()), "{}", a.name);
        }
    }
}
