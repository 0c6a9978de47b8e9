//! The alerting rules, their promtool unit tests and the runbook, generated
//! from the reason table in code.
//!
//! `alerts/mqtt-disconnect-exporter.rules.yml`, `alerts/tests/*.test.yml` and
//! `docs/runbook.md` are the output of this file: `tests/it/alerts.rs` fails if
//! they differ from it, and `UPDATE_GENERATED=1 cargo test --test it alerts`
//! rewrites them. The end-to-end test renders the same rules with every range
//! and `for:` divided by twenty, so alerts fire within seconds.

use std::fmt::Write as _;

use mqtt_disconnect_exporter::core::reasons::{Reason, TABLE};

pub const RULES_FILE: &str = "alerts/mqtt-disconnect-exporter.rules.yml";
pub const TESTS_FILE: &str = "alerts/tests/mqtt-disconnect-exporter.test.yml";
pub const RUNBOOK_FILE: &str = "docs/runbook.md";
pub const RUNBOOK_URL: &str = "docs/runbook.md";

/// A duration in seconds, rendered at a scale.
#[derive(Clone, Copy)]
pub struct Dur(pub u64);

fn fmt_dur(secs: u64) -> String {
    if secs == 0 {
        "0s".into()
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Renders durations divided by `divisor` (1 for the shipped rules).
pub struct Scale {
    pub divisor: u64,
}

impl Scale {
    fn d(&self, d: Dur) -> String {
        fmt_dur(d.0 / self.divisor)
    }
}

const M: u64 = 60;

/// How an alert decides.
enum Kind {
    /// Rate over 5m above `floor`/s and above 3x the rate of the hour before.
    Spike { floor: f64 },
    /// At least `min` events in `window`.
    Sustained { min: u32, window: Dur },
    /// Free-form expression with `{r5m}`-style range placeholders resolved by `exprf`.
    Expr(fn(&Scale) -> String),
}

pub struct Alert {
    pub name: &'static str,
    reason: Option<Reason>,
    kind: Kind,
    for_: Dur,
    pub severity: &'static str,
    summary: &'static str,
    description: &'static str,
}

fn disconnects(reason: Reason) -> String {
    format!(
        "mqtt_client_disconnects_total{{reason=\"{}\"}}",
        reason.as_str()
    )
}

pub fn alerts() -> Vec<Alert> {
    let spike = |name, reason, floor, for_: u64, severity, summary| Alert {
        name,
        reason: Some(reason),
        kind: Kind::Spike { floor },
        for_: Dur(for_ * M),
        severity,
        summary,
        description: "{{ $value | humanize }} disconnects/s with reason \
            {{ $labels.reason }} in job {{ $labels.job }}, \
            more than 3 times the rate of the hour before.",
    };
    let mut list = vec![
        spike(
            "MQTTKeepaliveTimeoutSpike",
            Reason::KeepaliveTimeout,
            0.5,
            5,
            "page",
            "Spike of MQTT keepalive timeouts",
        ),
        Alert {
            name: "MQTTTooManyConnections",
            reason: Some(Reason::TooManyConnection),
            kind: Kind::Sustained {
                min: 3,
                window: Dur(5 * M),
            },
            for_: Dur(5 * M),
            severity: "page",
            summary: "The MQTT broker is refusing connections: too many connections",
            description: "{{ $value | humanize }} too_many_connection disconnects \
                in the last 5 minutes in job {{ $labels.job }}, \
                for 5 minutes or more: clients are being refused.",
        },
        Alert {
            name: "MQTTClientIdConflictFlapping",
            reason: Some(Reason::Takeovered),
            kind: Kind::Expr(|_| {
                "sum by (job) (mqtt_flapping_clients{kind=\"takeover\"}) \
                > 0"
                .into()
            }),
            for_: Dur(10 * M),
            severity: "warning",
            summary: "MQTT client IDs are flapping between devices (client ID conflict)",
            description: "{{ $value }} client IDs in job {{ $labels.job \
                }} were taken over repeatedly within the flapping \
                window: two devices share each ID. Find them with \
                topk(20, mqtt_client_flapping{kind=\"takeover\"}) \
                or the exporter's /api/v1/flapping (it lists the \
                peer addresses fighting over each ID).",
        },
        spike(
            "MQTTAuthenticationFailures",
            Reason::NotAuthenticated,
            0.2,
            10,
            "warning",
            "Spike of MQTT authentication failures",
        ),
        spike(
            "MQTTAuthorizationFailures",
            Reason::NotAuthorized,
            0.2,
            10,
            "warning",
            "Spike of MQTT authorization failures",
        ),
        spike(
            "MQTTCredentialsExpired",
            Reason::AuthenticationExpired,
            0.1,
            10,
            "warning",
            "Spike of expired MQTT client credentials",
        ),
    ];
    for reason in [
        Reason::PingWithoutConnect,
        Reason::ClientIdTooLong,
        Reason::ClientIdRequired,
        Reason::ClientIdInvalid,
        Reason::BadWillMessage,
    ] {
        list.push(spike(
            "MQTTClientProtocolErrors",
            reason,
            0.1,
            15,
            "warning",
            "Spike of MQTT client protocol errors",
        ));
    }
    list.extend([
        spike(
            "MQTTServerInternalError",
            Reason::ServerInternalError,
            0.05,
            5,
            "warning",
            "The MQTT broker reports internal errors",
        ),
        Alert {
            name: "MQTTBrokerGoAway",
            reason: Some(Reason::GoAway),
            kind: Kind::Sustained {
                min: 10,
                window: Dur(10 * M),
            },
            for_: Dur(0),
            severity: "info",
            summary: "An MQTT broker node is restarting or shutting down (go_away)",
            description: "{{ $value | humanize }} go_away disconnects in \
                the last 10 minutes in job {{ $labels.job }}: \
                a broker node restarted or is being maintained. \
                Keepalive-timeout and reconnect-flapping alerts \
                of the same job are inhibited meanwhile.",
        },
        Alert {
            name: "MQTTReconnectFlapping",
            reason: None,
            kind: Kind::Expr(|_| {
                "sum by (job) (mqtt_flapping_clients{kind=\"reconnect\"}) \
                > 0"
                .into()
            }),
            for_: Dur(15 * M),
            severity: "warning",
            summary: "MQTT clients are in a connect/disconnect loop",
            description: "{{ $value }} client IDs in job {{ $labels.job \
                }} disconnected 15 or more times within a minute. \
                Find them with topk(20, mqtt_client_flapping{kind=\"reconnect\"}) \
                or /api/v1/flapping, then check their disconnect \
                reasons.",
        },
        Alert {
            name: "MQTTExporterDown",
            reason: None,
            kind: Kind::Expr(|_| "up{job=\"mqtt-disconnect-exporter\"} == 0".into()),
            for_: Dur(5 * M),
            severity: "warning",
            summary: "The MQTT disconnect exporter cannot be scraped",
            description: "Prometheus cannot scrape {{ $labels.instance }}: \
                disconnect reasons are not being counted.",
        },
        Alert {
            name: "MQTTExporterBrokerDisconnected",
            reason: None,
            kind: Kind::Expr(|_| "mqtt_exporter_broker_up == 0".into()),
            for_: Dur(5 * M),
            severity: "warning",
            summary: "The MQTT disconnect exporter has no session to the broker",
            description: "{{ $labels.instance }} has been disconnected from \
                its broker for 5 minutes: no events are counted. \
                Check the exporter's log for the connection error.",
        },
        Alert {
            name: "MQTTExporterNoEvents",
            reason: None,
            kind: Kind::Expr(|s| {
                format!(
                    "sum by (job, instance) (rate(mqtt_exporter_events_received_total[{}])) \
                    == 0\nand on (job, instance)\nmqtt_exporter_broker_up \
                    == 1",
                    s.d(Dur(30 * M))
                )
            }),
            for_: Dur(15 * M),
            severity: "warning",
            summary: "The MQTT disconnect exporter receives no events",
            description: "{{ $labels.instance }} is connected to its broker \
                but received no event for 45 minutes: check the \
                topic filters, the broker's event publishing (EMQX \
                rule or sys_event_messages) and the exporter user's \
                ACL.",
        },
        Alert {
            name: "MQTTExporterEventErrors",
            reason: None,
            kind: Kind::Expr(|s| {
                let r = s.d(Dur(10 * M));
                format!(
                    "sum by (job, instance) (rate(mqtt_exporter_event_errors_total[{r}]))\n/\n(sum \
                        by (job, instance) (rate(mqtt_exporter_events_received_total[{r}])) \
                        + sum by (job, instance) (rate(mqtt_exporter_event_errors_total[{r}])))\n> \
                        0.01"
                )
            }),
            for_: Dur(15 * M),
            severity: "warning",
            summary: "The MQTT disconnect exporter rejects events",
            description: "{{ $value | humanizePercentage }} of the events \
                reaching {{ $labels.instance }} are rejected; \
                mqtt_exporter_event_errors_total{error} says why \
                (invalid_json, missing_field, too_large, invalid_utf8, \
                unknown_event).",
        },
    ]);
    list
}

impl Alert {
    pub fn expr(&self, s: &Scale) -> String {
        match &self.kind {
            Kind::Spike { floor } => {
                let r = self.reason.map(disconnects).unwrap_or_default();
                let (w, base, off) = (s.d(Dur(5 * M)), s.d(Dur(60 * M)), s.d(Dur(5 * M)));
                format!(
                    "sum by (job, reason) (rate({r}[{w}])) > {floor}\nand\nsum \
                        by (job, reason) (rate({r}[{w}]))\n  > 3 * (\n    sum \
                        by (job, reason) (rate({r}[{base}] offset {off}))\n    or\n    sum \
                        by (job, reason) (rate({r}[{w}])) * 0\n  )"
                )
            }
            Kind::Sustained { min, window } => {
                let r = self.reason.map(disconnects).unwrap_or_default();
                format!(
                    "sum by (job, reason) (increase({r}[{}])) >= {min}",
                    s.d(*window)
                )
            }
            Kind::Expr(f) => f(s),
        }
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The rules file, with durations at `scale`.
pub fn rules_yaml(s: &Scale) -> String {
    let mut out = String::from(
        "# Generated from the reason table in code by tests/it/common/rules.rs:\n\
         # edit that file, then run `UPDATE_GENERATED=1 cargo test --test it alerts`.\n\
         # The `job` of the exporter's scrape config is assumed to be \
         \"mqtt-disconnect-exporter\" in MQTTExporterDown.\n\
         groups:\n  - name: mqtt-disconnect-exporter\n    rules:\n",
    );
    for a in alerts() {
        let _ = writeln!(out, "      - alert: {}", a.name);
        out.push_str("        expr: |\n");
        out.push_str(&indent(&a.expr(s), 10));
        let _ = writeln!(out, "        for: {}", s.d(a.for_));
        out.push_str("        labels:\n");
        let _ = writeln!(out, "          severity: {}", a.severity);
        if let Some(r) = a.reason {
            let _ = writeln!(out, "          reason: {}", r.as_str());
            let _ = writeln!(out, "          category: {}", r.info().category);
        }
        out.push_str("        annotations:\n");
        let _ = writeln!(out, "          summary: {}", q(a.summary));
        let _ = writeln!(out, "          description: {}", q(a.description));
        let anchor = a.reason.map_or("exporter-health", |r| r.as_str());
        if let Some(r) = a.reason {
            let _ = writeln!(out, "          meaning: {}", q(r.info().meaning));
            let _ = writeln!(out, "          action: {}", q(r.info().action));
        }
        let _ = writeln!(
            out,
            "          runbook_url: {}",
            q(&format!("{RUNBOOK_URL}#{anchor}"))
        );
    }
    out
}

/// (what, input series, eval time, fires?, extra expected labels, $value as templated)
type Case = (
    &'static str,
    Vec<(String, String)>,
    &'static str,
    bool,
    String,
    &'static str,
);

/// promtool unit tests: each alert fires on its pattern and stays quiet on a
/// steady baseline, a steady high rate, a single event and three isolated events.
pub fn tests_yaml() -> String {
    let mut out = String::from(
        "# Generated by tests/it/common/rules.rs; run with `promtool test rules`.\n\
         rule_files:\n  - ../mqtt-disconnect-exporter.rules.yml\nevaluation_interval: 1m\ntests:\n",
    );
    let job = "job=\"mqtt-disconnect-exporter\",instance=\"exp:9883\"";
    for a in alerts() {
        let reason = a.reason.map(|r| r.as_str()).unwrap_or("");
        let series = format!("mqtt_client_disconnects_total{{{job},reason=\"{reason}\"}}");
        let mut labels = format!("severity: {}", a.severity);
        if let Some(r) = a.reason {
            let _ = write!(
                labels,
                ", reason: {}, category: {}",
                r.as_str(),
                r.info().category
            );
        }
        let tcp_closed = format!("mqtt_client_disconnects_total{{{job},reason=\"tcp_closed\"}}");
        let takeovered = format!("mqtt_client_disconnects_total{{{job},reason=\"takeovered\"}}");
        let up = "up{job=\"mqtt-disconnect-exporter\",instance=\"exp:9883\"}".to_string();
        let broker_up = format!("mqtt_exporter_broker_up{{{job}}}");
        let received =
            format!("mqtt_exporter_events_received_total{{{job},kind=\"disconnected\"}}");
        let errors = format!("mqtt_exporter_event_errors_total{{{job},error=\"invalid_json\"}}");
        let on_job = || "job: mqtt-disconnect-exporter".to_string();
        let on_instance = || "job: mqtt-disconnect-exporter, instance: exp:9883".to_string();
        // (what, input series, eval time, fires?, extra expected labels, $value as templated)
        let cases: Vec<Case> = match (&a.kind, a.name) {
            (Kind::Spike { .. }, _) => vec![
                (
                    "storm after a quiet hour",
                    vec![(series.clone(), "0+1x70 70+600x20".into())],
                    "90m",
                    true,
                    on_job(),
                    "10",
                ),
                (
                    "steady high rate",
                    vec![(series.clone(), "0+600x100".into())],
                    "95m",
                    false,
                    String::new(),
                    "",
                ),
                (
                    "three isolated events",
                    vec![(series.clone(), "0x20 1x20 2x20 3x20".into())],
                    "75m",
                    false,
                    String::new(),
                    "",
                ),
                (
                    "a single event",
                    vec![(series.clone(), "0x30 1x60".into())],
                    "40m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Sustained { min, .. }, _) => vec![
                (
                    "sustained occurrences",
                    vec![(series.clone(), format!("0x10 0+{min}x30"))],
                    "25m",
                    true,
                    on_job(),
                    if *min == 3 { "15" } else { "100" },
                ),
                (
                    "three isolated events",
                    vec![(series.clone(), "0x20 1x20 2x20 3x20".into())],
                    "75m",
                    false,
                    String::new(),
                    "",
                ),
                (
                    "a single event",
                    vec![(series.clone(), "0x30 1x60".into())],
                    "40m",
                    false,
                    String::new(),
                    "",
                ),
                (
                    "steady baseline of other reasons",
                    vec![
                        (tcp_closed, "0+600x60".into()),
                        (series.clone(), "0x60".into()),
                    ],
                    "55m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Expr(_), "MQTTClientIdConflictFlapping")
            | (Kind::Expr(_), "MQTTReconnectFlapping") => {
                let kind = if a.name == "MQTTReconnectFlapping" {
                    "reconnect"
                } else {
                    "takeover"
                };
                let gauge = format!("mqtt_flapping_clients{{{job},kind=\"{kind}\"}}");
                vec![
                    (
                        "flapping clients for a while",
                        vec![(gauge.clone(), "0x10 2x30".into())],
                        "35m",
                        true,
                        on_job(),
                        "2",
                    ),
                    (
                        "a single takeover never flags, so the gauge stays \
                        0",
                        vec![
                            (gauge.clone(), "0x60".into()),
                            (takeovered, "0x30 1x30".into()),
                        ],
                        "50m",
                        false,
                        String::new(),
                        "",
                    ),
                    (
                        "a brief flap",
                        vec![(gauge.clone(), "0x10 1x3 0x40".into())],
                        "40m",
                        false,
                        String::new(),
                        "",
                    ),
                ]
            }
            (Kind::Expr(_), "MQTTExporterDown") => vec![
                (
                    "scrapes fail",
                    vec![(up.clone(), "1x10 0x20".into())],
                    "25m",
                    true,
                    on_instance(),
                    "",
                ),
                (
                    "a single failed scrape",
                    vec![(up.clone(), "1x10 0 1x20".into())],
                    "25m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Expr(_), "MQTTExporterBrokerDisconnected") => vec![
                (
                    "broker session down",
                    vec![(broker_up.clone(), "1x10 0x20".into())],
                    "25m",
                    true,
                    on_instance(),
                    "",
                ),
                (
                    "a short reconnect",
                    vec![(broker_up.clone(), "1x10 0x2 1x20".into())],
                    "25m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Expr(_), "MQTTExporterNoEvents") => vec![
                (
                    "connected but silent",
                    vec![
                        (received.clone(), "0+10x30 300x60".into()),
                        (broker_up.clone(), "1x90".into()),
                    ],
                    "85m",
                    true,
                    on_instance(),
                    "",
                ),
                (
                    "steady events",
                    vec![
                        (received.clone(), "0+10x90".into()),
                        (broker_up.clone(), "1x90".into()),
                    ],
                    "85m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Expr(_), "MQTTExporterEventErrors") => vec![
                (
                    "many rejected events",
                    vec![
                        (errors.clone(), "0+10x60".into()),
                        (received.clone(), "0+100x60".into()),
                    ],
                    "40m",
                    true,
                    on_instance(),
                    "9.091%",
                ),
                (
                    "three isolated errors",
                    vec![
                        (errors.clone(), "0x20 1x20 2x20 3x20".into()),
                        (received.clone(), "0+100x80".into()),
                    ],
                    "75m",
                    false,
                    String::new(),
                    "",
                ),
            ],
            (Kind::Expr(_), other) => panic!("no test cases for {other}"),
        };
        for (what, input, at, fires, extra, value) in cases {
            let _ = writeln!(out, "  # {}: {what}", a.name);
            out.push_str("  - interval: 1m\n    input_series:\n");
            for (name, values) in &input {
                let _ = writeln!(
                    out,
                    "      - series: {}\n        values: {}",
                    q(name),
                    q(values)
                );
            }
            let _ = writeln!(
                out,
                "    alert_rule_test:\n      - eval_time: {at}\n        alertname: {}",
                a.name
            );
            if fires {
                out.push_str("        exp_alerts:\n");
                let _ = writeln!(out, "          - exp_labels: {{{labels}, {extra}}}");
                out.push_str("            exp_annotations:\n");
                let _ = writeln!(out, "              summary: {}", q(a.summary));
                let _ = writeln!(
                    out,
                    "              description: {}",
                    q(&render(a.description, value, reason))
                );
                if let Some(r) = a.reason {
                    let _ = writeln!(out, "              meaning: {}", q(r.info().meaning));
                    let _ = writeln!(out, "              action: {}", q(r.info().action));
                }
                let anchor = a.reason.map_or("exporter-health", |r| r.as_str());
                let _ = writeln!(
                    out,
                    "              runbook_url: {}",
                    q(&format!("{RUNBOOK_URL}#{anchor}"))
                );
            } else {
                out.push_str("        exp_alerts: []\n");
            }
        }
    }
    out
}

/// A description as Prometheus templates it for the test series.
fn render(description: &str, value: &str, reason: &str) -> String {
    description
        .replace("{{ $value | humanizePercentage }}", value)
        .replace("{{ $value | humanize }}", value)
        .replace("{{ $value }}", value)
        .replace("{{ $labels.reason }}", reason)
        .replace("{{ $labels.job }}", "mqtt-disconnect-exporter")
        .replace("{{ $labels.instance }}", "exp:9883")
}

/// Things to check for each reason, written once here; meaning and action come from the table.
fn confirm(reason: Reason) -> &'static str {
    match reason {
        Reason::Normal => {
            "Expected. A rise usually follows a client release \
            that exits more often; compare with `mqtt_client_connects_total`."
        }
        Reason::Takeovered => {
            "Dashboard \"MQTT flapping\": takeover-flapping \
            clients and their peers. `/api/v1/flapping` lists \
            the peer addresses fighting over each ID; two \
            or more addresses for one ID is a conflict. A \
            single takeover after a network blip is normal."
        }
        Reason::Kicked => {
            "Broker audit log or management API history for \
            kick operations at the time of the spike."
        }
        Reason::KeepaliveTimeout => {
            "Dashboard \"MQTT disconnects\": is the spike on \
            all nodes (network, broker overload) or one region/peer \
            range? Check `mqtt_event_delay_seconds` and the \
            broker's CPU. A broker restart (`go_away`) at \
            the same time explains it."
        }
        Reason::NotAuthenticated => {
            "Broker authentication log for the client IDs and \
            usernames refused; a credential rotation or an \
            expired CA is the usual cause of a fleet-wide \
            spike."
        }
        Reason::NotAuthorized => {
            "Broker authorization (ACL) log: which topic or \
            action was denied; a recent ACL change is the \
            usual cause."
        }
        Reason::TcpClosed => {
            "Peer addresses of the affected clients: one NAT \
            gateway, carrier or region? Compare with `keepalive_timeout`."
        }
        Reason::PingWithoutConnect => {
            "Which firmware version the clients run; the SDK \
            sends PINGREQ before CONNECT."
        }
        Reason::AuthenticationExpired => {
            "Token lifetimes and the refresh logic of the affected \
            firmware; the clients should refresh before expiry."
        }
        Reason::TooManyConnection => {
            "Broker connection count against its license or \
            listener `max_connections`, and the per-client \
            connection rate: a reconnect storm from buggy \
            clients looks the same."
        }
        Reason::GoAway => {
            "The broker's maintenance or deployment log; expect \
            keepalive and reconnect noise from the same cluster \
            meanwhile (inhibited)."
        }
        Reason::ClientIdTooLong | Reason::ClientIdRequired | Reason::ClientIdInvalid => {
            "The client IDs in the broker's connection log \
            and the firmware that generates them."
        }
        Reason::BadWillMessage => {
            "The will topic and payload of the affected clients, \
            and their publish permission on the will topic."
        }
        Reason::ServerInternalError => {
            "The broker's error log at the time of the alert; \
            collect timestamps, instance ID and client IDs \
            for the vendor."
        }
        Reason::Other => {
            "The exporter's log: each new raw reason is logged \
            once (`unknown disconnect reason`). If it is common, \
            map it now with `--reason.alias 'RAW=CANONICAL'`, and \
            propose it as an alias in `src/core/reasons.rs`."
        }
    }
}

pub fn runbook_md() -> String {
    let mut out = String::from(
        "# Runbook: MQTT disconnect reasons\n\n\
         <!-- Generated by tests/it/common/rules.rs from the reason table in code; do not edit by \
         hand. -->\n\n\
         Each alert of `alerts/mqtt-disconnect-exporter.rules.yml` links to a section here. \
         Meaning and recommended action are the reference table's (`mqtt-disconnect-exporter \
         reasons`).\n\n",
    );
    let all = alerts();
    for row in &TABLE {
        let _ = writeln!(out, "## {}\n", row.id);
        let _ = writeln!(
            out,
            "- Category: {}; severity: {}",
            row.category,
            row.severity.as_str()
        );
        let names: Vec<&str> = all
            .iter()
            .filter(|a| a.reason == Some(row.reason))
            .map(|a| a.name)
            .collect();
        if !names.is_empty() {
            let _ = writeln!(out, "- Alerts: {}", names.join(", "));
        }
        let _ = writeln!(out, "- Meaning: {}", row.meaning);
        let _ = writeln!(out, "- Recommended action: {}", row.action);
        let _ = writeln!(out, "- How to confirm: {}", confirm(row.reason));
        let _ = writeln!(
            out,
            "- Query: `sum by (job) (rate(mqtt_client_disconnects_total{{reason=\"{}\"}}[5m]))`\n",
            row.id
        );
    }
    out.push_str(
        "## exporter-health\n\n\
        - MQTTExporterDown: Prometheus cannot scrape the exporter. Check the process, its \
        `--web.listen-address`, and the scrape job name (the rule assumes \
        `job=\"mqtt-disconnect-exporter\"`).\n\
        - MQTTExporterBrokerDisconnected: the exporter's log says why it cannot connect \
        (refused credentials, TLS, DNS). While it lasts, no event is counted; with a persistent \
        session, QoS 1 events queue at the broker up to its queue limit.\n\
        - MQTTExporterNoEvents: connected but nothing arrives. Check `/-/ready` (a refused \
        subscription is logged as an error naming the topic), the EMQX rule or \
        `sys_topics.sys_event_messages`, and the exporter user's ACL.\n\
        - MQTTExporterEventErrors: `mqtt_exporter_event_errors_total{error}` says why events \
        are rejected; the first rejection of each kind is logged at warn with its topic.\n",
    );
    out
}

/// The README's alert table.
pub fn readme_alerts_table() -> String {
    let mut out = String::from("| alert | severity | fires when | reason |\n|---|---|---|---|\n");
    for a in alerts() {
        let when = match &a.kind {
            Kind::Spike { floor } => format!(
                "rate over 5m above {floor}/s and above 3x the rate of the hour before, for {}",
                fmt_dur(a.for_.0)
            ),
            Kind::Sustained { min, window } => format!(
                "{min} or more in {}, for {}",
                fmt_dur(window.0),
                fmt_dur(a.for_.0)
            ),
            Kind::Expr(f) => format!(
                "`{}` for {}",
                f(&Scale { divisor: 1 }).replace('\n', " "),
                fmt_dur(a.for_.0)
            ),
        };
        let reason = a
            .reason
            .map_or(String::new(), |r| format!("`{}`", r.as_str()));
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {reason} |",
            a.name,
            a.severity,
            when.replace('|', "\\|")
        );
    }
    out
}
