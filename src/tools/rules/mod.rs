//! `mqtt-disconnect-exporter rules`: the Prometheus alerting and recording
//! rules, generated from the reason table, in the monitoring-mixin style.
//!
//! One list of [`Alert`]s renders four ways: the rule file
//! (`alerts/mqtt-disconnect-exporter.rules.yml` is its default output), the
//! prometheus-operator `PrometheusRule` resource, the promtool unit tests for
//! them ([`promtool`]), and the runbook they link to ([`runbook`]). Options
//! follow the mixins: a selector for the exporter's series, an absolute
//! runbook URL and the severity names. Severities are `critical` (pages),
//! `warning` and `info`, and an alert about a reason carries the reason
//! table's own severity for it. Tests check that the shipped files equal the
//! default output and that promtool accepts other options too.

use std::fmt::Write as _;

use crate::cli::{RulesArgs, RulesFormat};
use crate::core::reasons::{Reason, Severity};

pub mod promtool;
pub mod runbook;

/// Where the shipped runbook is published.
pub const DEFAULT_RUNBOOK_URL: &str = concat!(
    "https://github.com/mqtt-disconnect-exporter/mqtt-disconnect-exporter",
    "/blob/main/docs/runbook.md"
);
/// The scrape job the shipped rules select.
pub const DEFAULT_SELECTOR: &str = "job=\"mqtt-disconnect-exporter\"";
/// How many devices the keepalive and too_many_connection pages name.
const PAGE_TOP_DEVICES: usize = 5;

/// Recorded per-reason rates, shared by the alerts and the dashboards.
pub const RATE_5M: &str = "job_reason:mqtt_client_disconnects:rate5m";
pub const RATE_1H: &str = "job_reason:mqtt_client_disconnects:rate1h";

/// How to render the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesOptions {
    /// Label matchers selecting the exporter's series, without braces.
    pub selector: String,
    /// Absolute URL of the runbook; each alert links to its section.
    pub runbook_url: String,
    pub critical: String,
    pub warning: String,
    pub info: String,
    /// Every range and `for:` is divided by this (1 for real use; the
    /// end-to-end test uses 20 so alerts fire within seconds).
    pub divisor: u64,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions {
            selector: DEFAULT_SELECTOR.into(),
            runbook_url: DEFAULT_RUNBOOK_URL.into(),
            critical: "critical".into(),
            warning: "warning".into(),
            info: "info".into(),
            divisor: 1,
        }
    }
}

impl RulesOptions {
    pub fn from_args(args: &RulesArgs) -> Self {
        RulesOptions {
            selector: args.selector.clone(),
            runbook_url: args.runbook_url.clone(),
            critical: args.severity_critical.clone(),
            warning: args.severity_warning.clone(),
            info: args.severity_info.clone(),
            divisor: 1,
        }
    }

    /// A duration in seconds as PromQL writes it, at this scale.
    fn d(&self, secs: u64) -> String {
        fmt_dur(secs / self.divisor)
    }

    /// `{selector,extra}` (or `{extra}` when the selector is empty).
    fn sel(&self, extra: &str) -> String {
        let parts: Vec<&str> = [self.selector.trim(), extra]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    pub fn severity(&self, severity: Severity) -> &str {
        match severity {
            Severity::Critical => &self.critical,
            Severity::Warning => &self.warning,
            Severity::Info | Severity::None => &self.info,
        }
    }

    /// The runbook URL of an alert's section.
    pub fn runbook(&self, alert: &Alert) -> String {
        format!("{}#{}", self.runbook_url, alert.anchor())
    }
}

/// Prints what `rules` was asked for.
pub fn main(args: &RulesArgs) -> std::process::ExitCode {
    let options = RulesOptions::from_args(args);
    let text = match args.format {
        RulesFormat::Prometheus => rules_yaml(&options),
        RulesFormat::Prometheusrule => prometheus_rule(&options),
        RulesFormat::PromtoolTests => promtool::tests_yaml(&options),
        RulesFormat::Runbook => runbook::runbook_md(&options),
    };
    print!("{text}");
    std::process::ExitCode::SUCCESS
}

pub fn fmt_dur(secs: u64) -> String {
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

const M: u64 = 60;

/// How an alert decides.
pub enum Kind {
    /// Recorded 5m rate above `floor`/s and above 3x the recorded 1h rate
    /// of the hour before.
    Spike { floor: f64 },
    /// At least `min` events in `window` seconds.
    Sustained { min: u32, window: u64 },
    /// Free-form expression.
    Expr(fn(&RulesOptions) -> String),
}

pub struct Alert {
    pub name: &'static str,
    pub reason: Option<Reason>,
    pub kind: Kind,
    /// `for:`, in seconds.
    pub for_: u64,
    /// The severity of an alert that is not about one reason; an alert
    /// about a reason takes the table's, so the two cannot disagree.
    severity: Severity,
    pub summary: &'static str,
    description: &'static str,
    /// Pages name the devices that cause them (`mqtt_client_top_disconnects`).
    pub names_devices: bool,
}

impl Alert {
    pub fn severity(&self) -> Severity {
        self.reason.map_or(self.severity, |r| r.info().severity)
    }

    /// The runbook section: the reason's own, else the alert's name as
    /// GitHub makes an anchor of a heading.
    pub fn anchor(&self) -> String {
        self.reason
            .map_or_else(|| self.name.to_ascii_lowercase(), |r| r.as_str().into())
    }

    pub fn expr(&self, o: &RulesOptions) -> String {
        let reason = self
            .reason
            .map(|r| format!("reason=\"{}\"", r.as_str()))
            .unwrap_or_default();
        match &self.kind {
            Kind::Spike { floor } => {
                let now = format!("{RATE_5M}{{{reason}}}");
                let before = format!("{RATE_1H}{{{reason}}}");
                format!(
                    "{now} > {floor}\nand\n{now}\n  > 3 * (\n    {before} offset {}\n    or\n    \
                     {now} * 0\n  )",
                    o.d(5 * M)
                )
            }
            Kind::Sustained { min, window } => format!(
                "sum by (job, reason) (increase(mqtt_client_disconnects_total{}[{}])) >= {min}",
                o.sel(&reason),
                o.d(*window)
            ),
            Kind::Expr(f) => f(o),
        }
    }

    /// The Go template that lists a page's top devices, from
    /// `mqtt_client_top_disconnects` of the alert's job and reason.
    pub fn devices_template(&self, o: &RulesOptions) -> Option<String> {
        let reason = self.reason.filter(|_| self.names_devices)?;
        // the query is a printf format inside a Go string literal: % doubled,
        // backslashes and quotes escaped
        let selector = o.selector.trim().replace('%', "%%");
        let own = format!("job=\"%s\",reason=\"{}\"", reason.as_str());
        let matchers: Vec<&str> = [selector.as_str(), own.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let query = format!(
            "sort_desc(topk({PAGE_TOP_DEVICES}, mqtt_client_top_disconnects{{{}}}))",
            matchers.join(",")
        )
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
        Some(format!(
            "{{{{ range $i, $d := query (printf \"{query}\" $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}{{{{ $d.Labels.clientid }}}} ({{{{ $d.Value }}}})\
             {{{{ else }}}}none listed{{{{ end }}}}"
        ))
    }

    /// The description; a page's names its top devices.
    pub fn description(&self, o: &RulesOptions) -> String {
        match (self.devices_template(o), self.reason) {
            (Some(devices), Some(reason)) => format!(
                "{} Top devices (disconnects in the exporter's window): {devices}; \
                 /api/v1/top?reason={} on the exporter lists more, with their addresses.",
                self.description,
                reason.as_str()
            ),
            _ => self.description.to_string(),
        }
    }
}

/// The alerts, in the order of the rule file.
pub fn alerts() -> Vec<Alert> {
    let spike = |name, reason, floor, for_: u64, summary| Alert {
        name,
        reason: Some(reason),
        kind: Kind::Spike { floor },
        for_: for_ * M,
        severity: Severity::Warning,
        summary,
        description: "{{ $value | humanize }} disconnects/s with reason \
            {{ $labels.reason }} in job {{ $labels.job }}, \
            more than 3 times the rate of the hour before.",
        names_devices: false,
    };
    let exporter = |name, kind, for_: u64, summary, description| Alert {
        name,
        reason: None,
        kind: Kind::Expr(kind),
        for_: for_ * M,
        severity: Severity::Warning,
        summary,
        description,
        names_devices: false,
    };
    let mut list = vec![
        Alert {
            names_devices: true,
            ..spike(
                "MQTTKeepaliveTimeoutSpike",
                Reason::KeepaliveTimeout,
                0.5,
                5,
                "Spike of MQTT keepalive timeouts",
            )
        },
        Alert {
            name: "MQTTTooManyConnections",
            reason: Some(Reason::TooManyConnection),
            kind: Kind::Sustained {
                min: 3,
                window: 5 * M,
            },
            for_: 5 * M,
            severity: Severity::Critical,
            summary: "The MQTT broker is refusing connections: too many connections",
            description: "{{ $value | humanize }} too_many_connection disconnects \
                in the last 5 minutes in job {{ $labels.job }}, \
                for 5 minutes or more: clients are being refused.",
            names_devices: true,
        },
        Alert {
            name: "MQTTClientIdConflictFlapping",
            reason: Some(Reason::Takeovered),
            kind: Kind::Expr(|o| {
                format!(
                    "sum by (job) (mqtt_flapping_clients{}) > 0",
                    o.sel("kind=\"takeover\"")
                )
            }),
            for_: 10 * M,
            severity: Severity::Warning,
            summary: "MQTT client IDs are flapping between devices (client ID conflict)",
            description: "{{ $value }} client IDs in job {{ $labels.job \
                }} were taken over repeatedly within the flapping \
                window: two devices share each ID. Find them with \
                topk(20, mqtt_client_flapping{kind=\"takeover\"}) \
                or the exporter's /api/v1/flapping (it lists the \
                peer addresses fighting over each ID).",
            names_devices: false,
        },
        spike(
            "MQTTAuthenticationFailures",
            Reason::NotAuthenticated,
            0.2,
            10,
            "Spike of MQTT authentication failures",
        ),
        spike(
            "MQTTAuthorizationFailures",
            Reason::NotAuthorized,
            0.2,
            10,
            "Spike of MQTT authorization failures",
        ),
        spike(
            "MQTTCredentialsExpired",
            Reason::AuthenticationExpired,
            0.1,
            10,
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
            "Spike of MQTT client protocol errors",
        ));
    }
    list.extend([
        spike(
            "MQTTServerInternalError",
            Reason::ServerInternalError,
            0.05,
            5,
            "The MQTT broker reports internal errors",
        ),
        Alert {
            name: "MQTTBrokerGoAway",
            reason: Some(Reason::GoAway),
            kind: Kind::Sustained {
                min: 10,
                window: 10 * M,
            },
            for_: 0,
            severity: Severity::Info,
            summary: "An MQTT broker node is restarting or shutting down (go_away)",
            description: "{{ $value | humanize }} go_away disconnects in \
                the last 10 minutes in job {{ $labels.job }}: \
                a broker node restarted or is being maintained. \
                Keepalive-timeout and reconnect-flapping alerts \
                of the same job are inhibited meanwhile.",
            names_devices: false,
        },
        exporter(
            "MQTTReconnectFlapping",
            |o| {
                format!(
                    "sum by (job) (mqtt_flapping_clients{}) > 0",
                    o.sel("kind=\"reconnect\"")
                )
            },
            15,
            "MQTT clients are in a connect/disconnect loop",
            "{{ $value }} client IDs in job {{ $labels.job \
                }} disconnected 15 or more times within a minute. \
                Find them with topk(20, mqtt_client_flapping{kind=\"reconnect\"}) \
                or /api/v1/flapping, then check their disconnect \
                reasons.",
        ),
        exporter(
            "MQTTExporterDown",
            |o| format!("up{} == 0", o.sel("")),
            5,
            "The MQTT disconnect exporter cannot be scraped",
            "Prometheus cannot scrape {{ $labels.instance }}: \
                disconnect reasons are not being counted.",
        ),
        exporter(
            "MQTTExporterAbsent",
            |o| format!("absent(up{})", o.sel("")),
            15,
            "The MQTT disconnect exporter has disappeared from Prometheus",
            "No target of the MQTT disconnect exporter has been \
                discovered for 15 minutes: disconnect reasons are not \
                being counted, and MQTTExporterDown cannot fire. \
                Check the scrape configuration or ServiceMonitor.",
        ),
        exporter(
            "MQTTExporterBrokerDisconnected",
            |o| format!("mqtt_exporter_broker_up{} == 0", o.sel("")),
            5,
            "The MQTT disconnect exporter has no session to the broker",
            "{{ $labels.instance }} has been disconnected from \
                its broker for 5 minutes: no events are counted. \
                Check the exporter's log for the connection error.",
        ),
        exporter(
            "MQTTExporterNoEvents",
            |o| {
                format!(
                    "sum by (job, instance) (rate(mqtt_exporter_events_received_total{}[{}])) \
                    == 0\nand on (job, instance)\nmqtt_exporter_broker_up{} == 1",
                    o.sel(""),
                    o.d(30 * M),
                    o.sel("")
                )
            },
            15,
            "The MQTT disconnect exporter receives no events",
            "{{ $labels.instance }} is connected to its broker \
                but received no event for 45 minutes: check the \
                topic filters, the broker's event publishing (EMQX \
                rule or sys_event_messages) and the exporter user's \
                ACL.",
        ),
        exporter(
            "MQTTExporterEventErrors",
            |o| {
                let (s, r) = (o.sel(""), o.d(10 * M));
                let errors = format!("rate(mqtt_exporter_event_errors_total{s}[{r}])");
                let received = format!("rate(mqtt_exporter_events_received_total{s}[{r}])");
                format!(
                    "sum by (job, instance) ({errors})\n/\n(sum by (job, instance) \
                     ({received}) + sum by (job, instance) ({errors}))\n> 0.01"
                )
            },
            15,
            "The MQTT disconnect exporter rejects events",
            "{{ $value | humanizePercentage }} of the events \
                reaching {{ $labels.instance }} are rejected; \
                mqtt_exporter_event_errors_total{error} says why \
                (invalid_json, missing_field, too_large, invalid_utf8, \
                unknown_event).",
        ),
    ]);
    list
}

/// The recording rules: (record, expr).
pub fn recording_rules(o: &RulesOptions) -> Vec<(&'static str, String)> {
    let rate = |w: u64| {
        format!(
            "sum by (job, reason) (rate(mqtt_client_disconnects_total{}[{}]))",
            o.sel(""),
            o.d(w)
        )
    };
    vec![(RATE_5M, rate(5 * M)), (RATE_1H, rate(60 * M))]
}

/// A YAML double-quoted string (JSON's escapes are YAML's).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The two rule groups, indented by `by` spaces.
fn groups(o: &RulesOptions, by: usize) -> String {
    let mut out = String::from("groups:\n  - name: mqtt-disconnect-exporter.rules\n    rules:\n");
    for (record, expr) in recording_rules(o) {
        let _ = writeln!(out, "      - record: {record}");
        out.push_str("        expr: |\n");
        out.push_str(&indent(&expr, 10));
    }
    out.push_str("  - name: mqtt-disconnect-exporter\n    rules:\n");
    for a in alerts() {
        let _ = writeln!(out, "      - alert: {}", a.name);
        out.push_str("        expr: |\n");
        out.push_str(&indent(&a.expr(o), 10));
        let _ = writeln!(out, "        for: {}", o.d(a.for_));
        out.push_str("        labels:\n");
        let _ = writeln!(out, "          severity: {}", q(o.severity(a.severity())));
        if let Some(r) = a.reason {
            let _ = writeln!(out, "          reason: {}", r.as_str());
            let _ = writeln!(out, "          category: {}", r.info().category);
        }
        out.push_str("        annotations:\n");
        let _ = writeln!(out, "          summary: {}", q(a.summary));
        let _ = writeln!(out, "          description: {}", q(&a.description(o)));
        if let Some(r) = a.reason {
            let _ = writeln!(out, "          meaning: {}", q(r.info().meaning));
            let _ = writeln!(out, "          action: {}", q(r.info().action));
        }
        let _ = writeln!(out, "          runbook_url: {}", q(&o.runbook(&a)));
    }
    indent(&out, by)
}

fn header(o: &RulesOptions) -> String {
    format!(
        "# Generated by `mqtt-disconnect-exporter rules` from the reason table in code\n\
         # (src/tools/rules); do not edit. Selector: {}\n",
        if o.selector.trim().is_empty() {
            "(none)"
        } else {
            o.selector.trim()
        }
    )
}

/// The Prometheus rule file.
pub fn rules_yaml(o: &RulesOptions) -> String {
    header(o) + &groups(o, 0)
}

/// The same rules as a prometheus-operator `PrometheusRule`.
pub fn prometheus_rule(o: &RulesOptions) -> String {
    format!(
        "{}apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  \
         name: mqtt-disconnect-exporter\n  labels:\n    \
         app.kubernetes.io/name: mqtt-disconnect-exporter\n    \
         app.kubernetes.io/component: alerting-rules\nspec:\n{}",
        header(o),
        groups(o, 2)
    )
}

/// The README's alert table.
pub fn readme_alerts_table() -> String {
    let o = RulesOptions::default();
    let mut out = String::from("| alert | severity | fires when | reason |\n|---|---|---|---|\n");
    for a in alerts() {
        let when = match &a.kind {
            Kind::Spike { floor } => format!(
                "rate over 5m above {floor}/s and above 3x the rate of the hour before, for {}",
                fmt_dur(a.for_)
            ),
            Kind::Sustained { min, window } => format!(
                "{min} or more in {}, for {}",
                fmt_dur(*window),
                fmt_dur(a.for_)
            ),
            Kind::Expr(f) => format!("`{}` for {}", f(&o).replace('\n', " "), fmt_dur(a.for_)),
        };
        let reason = a
            .reason
            .map_or(String::new(), |r| format!("`{}`", r.as_str()));
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {reason} |",
            a.name,
            o.severity(a.severity()),
            when.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_about_a_reason_carry_the_tables_severity() {
        for a in alerts() {
            if let Some(r) = a.reason {
                assert_eq!(a.severity(), r.info().severity, "{}", a.name);
            }
        }
        let critical: Vec<&str> = alerts()
            .iter()
            .filter(|a| a.severity() == Severity::Critical)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            critical,
            ["MQTTKeepaliveTimeoutSpike", "MQTTTooManyConnections"]
        );
    }

    #[test]
    fn a_page_names_its_devices_through_the_top_metric() {
        let o = RulesOptions {
            selector: "job=~\"mqtt.*\",env=\"100%\"".into(),
            ..RulesOptions::default()
        };
        let a = &alerts()[0];
        assert_eq!(
            a.description(&o)
                .split("query (printf ")
                .nth(1)
                .and_then(|s| s.split(" $labels.job)").next()),
            Some(concat!(
                r#""sort_desc(topk(5, mqtt_client_top_disconnects{job=~\"mqtt.*\","#,
                r#"env=\"100%%\",job=\"%s\",reason=\"keepalive_timeout\"}))""#
            ))
        );
    }

    #[test]
    fn an_empty_selector_selects_everything() {
        let o = RulesOptions {
            selector: String::new(),
            ..RulesOptions::default()
        };
        assert_eq!(o.sel(""), "{}");
        assert_eq!(o.sel("kind=\"x\""), "{kind=\"x\"}");
        assert!(rules_yaml(&o).contains("absent(up{})"));
    }
}
