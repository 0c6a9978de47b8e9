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

use crate::core::flapping::FlapKind;
use crate::core::listed::TOP_PAGE;
use crate::core::reasons::{Reason, Severity};
use crate::core::top::STANDOUT_MIN;

pub mod promtool;
pub mod runbook;
pub mod scenarios;
mod selector;
pub mod values;

pub use selector::Selector;

/// Where the shipped runbook is published.
pub const DEFAULT_RUNBOOK_URL: &str = concat!(
    "https://github.com/mqtt-disconnect-exporter/mqtt-disconnect-exporter",
    "/blob/main/docs/runbook.md"
);
/// The scrape job the shipped rules select.
pub const DEFAULT_SELECTOR: &str = "job=\"mqtt-disconnect-exporter\"";

/// Recorded per-reason rates, shared by the alerts and the dashboards.
pub const RATE_2M: &str = "job_reason:mqtt_client_disconnects:rate2m";
pub const RATE_5M: &str = "job_reason:mqtt_client_disconnects:rate5m";
pub const RATE_1H: &str = "job_reason:mqtt_client_disconnects:rate1h";
/// The usual rate a spike is measured against (see [`baseline_expr`]).
pub const BASELINE: &str = "job_reason:mqtt_client_disconnects:baseline_rate";

/// The rule groups are evaluated this often, whatever Prometheus's global
/// evaluation interval: a page within 2 minutes needs it.
const EVAL_INTERVAL: u64 = 30;

/// The thresholds an operator tunes.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// A spike is this many times the usual rate.
    pub spike_factor: f64,
    /// The keepalive_timeout page's floor, in timeouts a minute.
    pub keepalive_timeout_min: f64,
    /// The too_many_connection page's floor, in refusals a minute.
    pub too_many_connection_min: f64,
    /// keep_firing_for of the reason alerts, in seconds.
    pub keep_firing_for: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            spike_factor: 3.0,
            keepalive_timeout_min: 12.0,
            too_many_connection_min: 6.0,
            keep_firing_for: 180,
        }
    }
}

/// How to render the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOptions {
    /// Label matchers selecting the exporter's series.
    pub selector: Selector,
    /// Absolute URL of the runbook; each alert links to its section.
    pub runbook_url: String,
    /// Base URL of the disconnects dashboard, for `dashboard_url`.
    pub dashboard_url: Option<String>,
    /// How a page links to the exporter that saw it (`http` or `https`).
    pub exporter_scheme: String,
    pub critical: String,
    pub warning: String,
    pub info: String,
    pub thresholds: Thresholds,
    /// Every range, offset, interval and `for:` is divided by this (1 for
    /// real use; the end-to-end test uses 20 so alerts fire within seconds).
    pub divisor: u64,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions {
            selector: DEFAULT_SELECTOR.parse().unwrap_or_default(),
            runbook_url: DEFAULT_RUNBOOK_URL.into(),
            dashboard_url: None,
            exporter_scheme: "http".into(),
            critical: "critical".into(),
            warning: "warning".into(),
            info: "info".into(),
            thresholds: Thresholds::default(),
            divisor: 1,
        }
    }
}

impl RulesOptions {
    /// A duration in seconds as PromQL writes it, at this scale (never
    /// below a second).
    fn d(&self, secs: u64) -> String {
        match secs {
            0 => fmt_dur(0),
            secs => fmt_dur((secs / self.divisor.max(1)).max(1)),
        }
    }

    /// `{selector,extra}` (or `{extra}` when the selector is empty).
    fn sel(&self, extra: &str) -> String {
        let selector = self.selector.to_string();
        let parts: Vec<&str> = [selector.as_str(), extra]
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

    /// The `dashboard_url` annotation of an alert about `reason`: the
    /// dashboard on that reason over the last 3 hours. (A range anchored
    /// on the alert's start would need `ALERTS_FOR_STATE`, whose value
    /// depends on evaluation details that a generated promtool test cannot
    /// know for every option; the relative range is the same everywhere.)
    pub fn dashboard(&self, reason: Reason) -> Option<String> {
        let base = self.dashboard_url.as_deref()?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(format!(
            "{base}{sep}var-reason={}&from=now-3h&to=now",
            reason.as_str()
        ))
    }
}

/// What `rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// A Prometheus rule file.
    Prometheus,
    /// A prometheus-operator PrometheusRule resource.
    Prometheusrule,
    /// promtool unit tests for the rule file (`promtool test rules`).
    PromtoolTests,
    /// The runbook in Markdown.
    Runbook,
}

/// Prints what `rules` was asked for.
pub fn main(options: &RulesOptions, format: RulesFormat) -> std::process::ExitCode {
    let options = options.clone();
    let text = match format {
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
    /// The rate over `window` seconds is above `floor`/s and above the
    /// spike factor times the reason's usual rate ([`BASELINE`]).
    Spike { floor: f64, window: u64 },
    /// At least `min` events in `window` seconds.
    Sustained { min: u32, window: u64 },
    /// Free-form expression.
    Expr(fn(&RulesOptions) -> String),
}

/// What an alert watches: the runbook's section and the promtool cases
/// are chosen by this value, never by the alert's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// The rate of its `reason`.
    Reason,
    /// Clients flapping by this kind.
    Flapping(FlapKind),
    /// The exporter itself.
    Exporter(Watch),
}

/// What an exporter alert watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Scrapes fail.
    Down,
    /// No target is discovered.
    Absent,
    /// The broker session is down.
    BrokerDisconnected,
    /// Connected, but no event arrives.
    NoEvents,
    /// Events are rejected.
    EventErrors,
}

pub struct Alert {
    pub name: &'static str,
    pub reason: Option<Reason>,
    pub about: About,
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

/// The expression of the usual rate of each reason, [`BASELINE`]; none of
/// its branches can be polluted by the spike it is compared with:
///
/// 1. With two days of history, the lower of the two days before, each the
///    highest 5m rate within 15 minutes of this time of day (a daily cycle
///    is its own baseline; a storm that lasts a whole day stays measured
///    against the day before it began).
/// 2. With one day, that day alone.
/// 3. In the first day after install, the highest 5m rate of the hour that
///    ended 10 minutes ago, held while the reason's 2m rate is above the
///    spike factor times it, so a storm cannot become its own baseline.
///
/// A branch is used only once its window is fully covered by data (a 5m
/// rate of a series only minutes old understates it), so nothing pages in
/// the first 15 minutes after install.
pub fn baseline_expr(o: &RulesOptions) -> String {
    let f = o.thresholds.spike_factor;
    let day = |k: u64| {
        format!(
            "(max_over_time({RATE_5M}[{}] offset {}) and on (job, reason) {RATE_5M} offset {})",
            o.d(30 * M),
            o.d(k * 24 * 60 * M - 15 * M),
            o.d(k * 24 * 60 * M),
        )
    };
    let (d1, d2) = (day(1), day(2));
    format!(
        "(\n  {d1}\n  <=\n  {d2}\n)\nor\n{d2}\nor\n{d1}\nor\n\
         (\n  {BASELINE}\n  and on (job, reason)\n  \
         {RATE_2M} > {f} * {BASELINE}\n)\nor\n(\n  max_over_time({RATE_5M}[{}] offset {})\n  \
         and on (job, reason) {RATE_5M} offset {}\n)",
        o.d(60 * M),
        o.d(10 * M),
        o.d(15 * M),
    )
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

    /// The alert's `floor` for a spike, with the operator's page floors.
    fn floor(&self, o: &RulesOptions) -> Option<f64> {
        let Kind::Spike { floor, .. } = self.kind else {
            return None;
        };
        Some(match self.reason {
            Some(Reason::KeepaliveTimeout) => o.thresholds.keepalive_timeout_min / 60.0,
            Some(Reason::TooManyConnection) => o.thresholds.too_many_connection_min / 60.0,
            _ => floor,
        })
    }

    pub fn expr(&self, o: &RulesOptions) -> String {
        let reason = self
            .reason
            .map(|r| format!("reason=\"{}\"", r.as_str()))
            .unwrap_or_default();
        match &self.kind {
            Kind::Spike { window, .. } => {
                let rate = if *window <= 2 * M { RATE_2M } else { RATE_5M };
                let now = format!("{rate}{{{reason}}}");
                format!(
                    "{now} > {}\nand\n{now} > {} * {BASELINE}",
                    fmt_f(self.floor(o).unwrap_or(0.0)),
                    fmt_f(o.thresholds.spike_factor),
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

    /// keep_firing_for, in seconds: reason alerts hold through a lull.
    pub fn keep_firing_for(&self, o: &RulesOptions) -> Option<u64> {
        let held = matches!(self.kind, Kind::Spike { .. } | Kind::Sustained { .. });
        (held && o.thresholds.keep_firing_for > 0).then_some(o.thresholds.keep_firing_for)
    }

    /// The Go template that lists a page's top devices and source networks, from
    /// `mqtt_client_top_disconnects` of the alert's job and reason, or says
    /// that none stands out, with `mqtt_client_disconnecting_clients`.
    pub fn devices_template(&self, o: &RulesOptions) -> Option<String> {
        let reason = self.reason.filter(|_| self.names_devices)?;
        // each query is a printf format inside a Go string literal: % doubled,
        // backslashes and quotes escaped
        let query = |metric: String| {
            let selector = o.selector.to_string();
            let own = format!("job=\"%s\",reason=\"{}\"", reason.as_str());
            let mut matchers = Vec::new();
            // the job comes from the alert; the selector's other matchers stay
            if !selector.is_empty() {
                matchers.push(selector.replace('%', "%%"));
            }
            matchers.push(own);
            metric
                .replace("MATCHERS", &matchers.join(","))
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        let top = query(format!(
            "sort_desc(topk({TOP_PAGE}, mqtt_client_top_disconnects{{MATCHERS}}))"
        ));
        let networks = query(format!(
            "sort_desc(topk({TOP_PAGE}, mqtt_network_top_disconnects{{MATCHERS}}))"
        ));
        // each node's share of the reason's disconnects (the job twice:
        // once for the node's rate, once for the total), and how many nodes
        // have any
        let node_rate = "sum by (node) (rate(mqtt_node_disconnects_total{MATCHERS}[5m]))";
        let nodes = query(format!(
            "sort_desc(topk(3, {node_rate} / scalar(sum({node_rate}))))"
        ));
        let node_count = query(format!("count({node_rate} > 0) > 1"));
        let lifetime = |q: &str| {
            query(format!(
                "histogram_quantile({q}, sum by (le) (rate\
                 (mqtt_client_connection_duration_seconds_bucket{{MATCHERS}}[10m]))) > 0"
            ))
        };
        let p50 = lifetime("0.5");
        let median_bucket = median_bucket_template();
        let instances = query(
            "sort_desc(topk(2, sum by (instance) (rate\
             (mqtt_client_disconnects_total{MATCHERS}[5m]))))"
                .into(),
        );
        let scheme = &o.exporter_scheme;
        let clients = query("sum(mqtt_client_disconnecting_clients{MATCHERS})".into());
        let saturated = query("max(mqtt_exporter_top_saturated{MATCHERS}) == 1".into());
        let devices = format!(
            "{{{{ with query (printf \"{clients}\" $labels.job) }}}}{{\
             {{ . | first | value | printf \"%.0f\" }}}}\
             {{{{ else }}}}0{{{{ end }}}} devices"
        );
        // "at most 2 each" only where the exporter knows it to be true;
        // counts as whole numbers (Go prints 2000000 as 2e+06)
        Some(format!(
            "{{{{ range $i, $d := query (printf \"{top}\" $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}\
             {{{{ $d.Labels.clientid }}}} ({{{{ $d.Value | printf \"%.0f\" }}}})\
             {{{{ else }}}}{{{{ with query (printf \"{saturated}\" $labels.job) }}}}\
             too many devices at once to single one out: {devices} in the window \
             (more than the exporter's top-devices bound holds; see the runbook)\
             {{{{ else }}}}no single device stands out: {devices}, at most {} disconnects each\
             {{{{ end }}}}{{{{ end }}}}. Top source networks: \
             {{{{ range $i, $n := query (printf \"{networks}\" $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}\
             {{{{ $n.Labels.network }}}} ({{{{ $n.Value | printf \"%.0f\" }}}})\
             {{{{ else }}}}{NO_NETWORK}{{{{ end }}}}. Broker nodes: \
             {{{{ range $i, $n := query (printf \"{nodes}\" $labels.job $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}\
             {{{{ $n.Value | humanizePercentage }}}} on {{{{ $n.Labels.node }}}}\
             {{{{ else }}}}{NO_NODE}{{{{ end }}}}\
             {{{{ with query (printf \"{node_count}\" $labels.job) }}}} \
             (of {{{{ . | first | value | printf \"%.0f\" }}}} nodes){{{{ end }}}}. \
             Connections that ended lived: \
             {{{{ with query (printf \"{p50}\" $labels.job) }}}}\
             {{{{ $m := . | first | value }}}}median {median_bucket}\
             {{{{ else }}}}{NO_LIFETIME}{{{{ end }}}}. Details: \
             {{{{ range $i, $e := query (printf \"{instances}\" $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}{scheme}://{{{{ $e.Labels.instance }}}}\
             /api/v1/top?reason={reason}{{{{ end }}}}",
            STANDOUT_MIN - 1,
            reason = reason.as_str(),
        ))
    }

    /// The description; a page's names its top devices.
    /// The Go template that names up to three of a flapping ticket's client
    /// IDs, from `mqtt_client_flapping` of the alert's job and kind.
    pub fn flapping_template(&self, o: &RulesOptions) -> Option<String> {
        if !self.description.contains("CLIENT_IDS") {
            return None;
        }
        let About::Flapping(kind) = self.about else {
            return None;
        };
        let kind = kind.as_str();
        let selector = o.selector.to_string();
        let mut matchers = Vec::new();
        if !selector.is_empty() {
            matchers.push(selector.replace('%', "%%"));
        }
        matchers.push(format!("job=\"%s\",kind=\"{kind}\""));
        let query = format!(
            "sort_desc(topk(3, mqtt_client_flapping{{{}}}))",
            matchers.join(",")
        )
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
        Some(format!(
            "{{{{ range $i, $c := query (printf \"{query}\" $labels.job) }}}}\
             {{{{ if $i }}}}, {{{{ end }}}}{{{{ $c.Labels.clientid }}}}\
             {{{{ else }}}}{NO_FLAPPING_IDS}{{{{ end }}}}"
        ))
    }

    pub fn description(&self, o: &RulesOptions) -> String {
        let text = self
            .description
            .replace("CLIENT_IDS", &self.flapping_template(o).unwrap_or_default())
            .replace("RATE", RATE)
            .replace("FACTOR", &fmt_f(o.thresholds.spike_factor));
        match (self.devices_template(o), self.reason) {
            (Some(devices), Some(reason)) => format!(
                "{text} Top devices (disconnects in the exporter's window): {devices}; \
                 /api/v1/top?reason={} on the exporter lists more, with their addresses.",
                reason.as_str()
            ),
            _ => text,
        }
    }
}

/// What a flapping ticket says before the exporter lists a client ID.
pub const NO_FLAPPING_IDS: &str = "not listed yet: see /api/v1/flapping";

/// The Go template that names the histogram bucket `$m` (an estimated
/// median) falls in: "between 5m and 6m". An estimate interpolates within
/// its bucket, so the true median is in the bucket named, whatever the
/// estimate says inside it.
fn median_bucket_template() -> String {
    let name = |s: f64| {
        if s >= 3600.0 {
            format!("{}h", s / 3600.0)
        } else if s >= 60.0 {
            format!("{}m", s / 60.0)
        } else {
            format!("{s}s")
        }
    };
    let mut out = String::new();
    let mut lower = None;
    for (i, le) in crate::core::lifetime::BUCKETS.iter().enumerate() {
        let branch = if i == 0 { "if" } else { "else if" };
        let text = match lower {
            None => format!("under {}", name(*le)),
            Some(lo) => format!("between {} and {}", name(lo), name(*le)),
        };
        out.push_str(&format!("{{{{ {branch} le $m {le:.1} }}}}{text}"));
        lower = Some(*le);
    }
    if let Some(last) = lower {
        out.push_str(&format!("{{{{ else }}}}over {}{{{{ end }}}}", name(last)));
    }
    out
}

/// What a page says when no event names its broker node.
pub const NO_NODE: &str = "none named in the events";

/// What a page says when no connection's lifetime is known.
pub const NO_LIFETIME: &str = "unknown (the events carry no connection start)";

/// What a page says when no source network has 3 or more disconnects.
pub const NO_NETWORK: &str =
    "none with 3 or more disconnects (or the events carry no peer address)";

/// A number as PromQL and the README write it (no trailing zeros).
pub fn fmt_f(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A rate in disconnects a second, as a person reads it at 3 a.m.: "25 a
/// minute" below one a second, "2.5 a second" below ten, "600 a second"
/// above (never Go's `419m`). The minute figure is computed by Prometheus
/// (`query`), since templates have no arithmetic. [`human_rate`] says the
/// same in Rust, for the tests' expected texts.
pub const RATE: &str = "{{ if ge $value 10.0 }}{{ printf \"%.0f\" $value }} a second\
    {{ else if ge $value 1.0 }}{{ printf \"%.1f\" $value }} a second\
    {{ else }}{{ with query (printf \"%f * 60\" $value) }}\
     {{ . | first | value | printf \"%.0f\" }}{{ end }} a minute{{ end }}";

/// What [`RATE`] prints for `per_second`.
pub fn human_rate(per_second: f64) -> String {
    if per_second >= 10.0 {
        format!("{per_second:.0} a second")
    } else if per_second >= 1.0 {
        format!("{per_second:.1} a second")
    } else {
        format!("{:.0} a minute", per_second * 60.0)
    }
}

const SPIKE_TEXT: &str = "RATE disconnects with reason \
    {{ $labels.reason }} in job {{ $labels.job }}, more than FACTOR times its \
    usual rate at this time of day.";

/// The alerts, in the order of the rule file.
pub fn alerts() -> Vec<Alert> {
    let spike = |name, reason, floor, for_: u64, summary| Alert {
        name,
        reason: Some(reason),
        about: About::Reason,
        kind: Kind::Spike {
            floor,
            window: 5 * M,
        },
        for_: for_ * M,
        severity: Severity::Warning,
        summary,
        description: SPIKE_TEXT,
        names_devices: false,
    };
    let page = |name, reason, summary| Alert {
        name,
        reason: Some(reason),
        about: About::Reason,
        kind: Kind::Spike {
            floor: 0.0,
            window: 2 * M,
        },
        for_: 30,
        severity: Severity::Critical,
        summary,
        description: SPIKE_TEXT,
        names_devices: true,
    };
    let exporter = |name, about, kind, for_: u64, summary, description| Alert {
        name,
        reason: None,
        about,
        kind: Kind::Expr(kind),
        for_: for_ * M,
        severity: Severity::Warning,
        summary,
        description,
        names_devices: false,
    };
    let mut list = vec![
        page(
            "MQTTKeepaliveTimeoutSpike",
            Reason::KeepaliveTimeout,
            "Spike of MQTT keepalive timeouts",
        ),
        Alert {
            description: "RATE too_many_connection disconnects in job \
                {{ $labels.job }}, more than FACTOR times its usual rate: \
                clients are being refused.",
            ..page(
                "MQTTTooManyConnections",
                Reason::TooManyConnection,
                "The MQTT broker is refusing connections: too many connections",
            )
        },
        Alert {
            name: "MQTTClientIdConflictFlapping",
            reason: Some(Reason::Takeovered),
            about: About::Flapping(FlapKind::Takeover),
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
                window: two devices share each ID (CLIENT_IDS). Find them with \
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
            about: About::Reason,
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
            About::Flapping(FlapKind::Reconnect),
            |o| {
                format!(
                    "sum by (job) (mqtt_flapping_clients{}) > 0",
                    o.sel("kind=\"reconnect\"")
                )
            },
            15,
            "MQTT clients are in a connect/disconnect loop",
            "{{ $value }} client IDs in job {{ $labels.job \
                }} disconnected 15 or more times within a minute (CLIENT_IDS). \
                Find them with topk(20, mqtt_client_flapping{kind=\"reconnect\"}) \
                or /api/v1/flapping, then check their disconnect \
                reasons.",
        ),
        exporter(
            "MQTTExporterDown",
            About::Exporter(Watch::Down),
            |o| format!("up{} == 0", o.sel("")),
            5,
            "The MQTT disconnect exporter cannot be scraped",
            "Prometheus cannot scrape {{ $labels.instance }}: \
                disconnect reasons are not being counted.",
        ),
        exporter(
            "MQTTExporterAbsent",
            About::Exporter(Watch::Absent),
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
            About::Exporter(Watch::BrokerDisconnected),
            |o| format!("mqtt_exporter_broker_up{} == 0", o.sel("")),
            5,
            "The MQTT disconnect exporter has no session to the broker",
            "{{ $labels.instance }} has been disconnected from \
                its broker for 5 minutes: no events are counted. \
                Check the exporter's log for the connection error.",
        ),
        exporter(
            "MQTTExporterNoEvents",
            About::Exporter(Watch::NoEvents),
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
            About::Exporter(Watch::EventErrors),
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
    vec![
        (RATE_2M, rate(2 * M)),
        (RATE_5M, rate(5 * M)),
        (RATE_1H, rate(60 * M)),
        (BASELINE, baseline_expr(o)),
    ]
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
    let interval = o.d(EVAL_INTERVAL);
    let mut out = format!(
        "groups:\n  - name: mqtt-disconnect-exporter.rules\n    interval: {interval}\n    rules:\n"
    );
    for (record, expr) in recording_rules(o) {
        let _ = writeln!(out, "      - record: {record}");
        out.push_str("        expr: |\n");
        out.push_str(&indent(&expr, 10));
    }
    let _ = write!(
        out,
        "  - name: mqtt-disconnect-exporter\n    interval: {interval}\n    rules:\n"
    );
    for a in alerts() {
        let _ = writeln!(out, "      - alert: {}", a.name);
        out.push_str("        expr: |\n");
        out.push_str(&indent(&a.expr(o), 10));
        let _ = writeln!(out, "        for: {}", o.d(a.for_));
        if let Some(keep) = a.keep_firing_for(o) {
            let _ = writeln!(out, "        keep_firing_for: {}", o.d(keep));
        }
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
        if let Some(url) = a.reason.and_then(|r| o.dashboard(r)) {
            let _ = writeln!(out, "          dashboard_url: {}", q(&url));
        }
    }
    indent(&out, by)
}

fn header(o: &RulesOptions) -> String {
    format!(
        "# Generated by `mqtt-disconnect-exporter rules` from the reason table in code\n\
         # (src/tools/rules); do not edit. Selector: {}\n",
        if o.selector.is_empty() {
            "(none)".to_string()
        } else {
            o.selector.to_string()
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
    let t = &o.thresholds;
    let factor = fmt_f(t.spike_factor);
    let mut out = String::from(
        "| alert | severity | fires when | pages within | stays quiet on | reason |\n\
         |---|---|---|---|---|---|\n",
    );
    for a in alerts() {
        let keep = a
            .keep_firing_for(&o)
            .map(|k| format!("; keeps firing {} after", fmt_dur(k)))
            .unwrap_or_default();
        let (when, within, quiet) = match &a.kind {
            Kind::Spike { window, .. } => (
                format!(
                    "rate over {} above {}/s and above {factor}x the usual rate, for {}{keep}",
                    fmt_dur(*window),
                    fmt_f(a.floor(&o).unwrap_or(0.0)),
                    fmt_dur(a.for_)
                ),
                if a.names_devices {
                    "2m (a 10x storm, 30 s scrapes; checked by `rules --format promtool-tests`)"
                        .to_string()
                } else {
                    format!("{} after the rate crosses", fmt_dur(a.for_ + *window))
                },
                format!(
                    "steady rates however high, a daily cycle, bumps under {factor}x, \
                     rates under {}/s, the first 15 minutes after install",
                    fmt_f(a.floor(&o).unwrap_or(0.0))
                ),
            ),
            Kind::Sustained { min, window } => (
                format!(
                    "{min} or more in {}, for {}{keep}",
                    fmt_dur(*window),
                    fmt_dur(a.for_)
                ),
                fmt_dur(a.for_ + *window),
                format!("fewer than {min} in {}", fmt_dur(*window)),
            ),
            Kind::Expr(f) => (
                format!("`{}` for {}", f(&o).replace('\n', " "), fmt_dur(a.for_)),
                fmt_dur(a.for_),
                "the condition holding for less than its `for`".to_string(),
            ),
        };
        let reason = a
            .reason
            .map_or(String::new(), |r| format!("`{}`", r.as_str()));
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {within} | {quiet} | {reason} |",
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
            selector: "job=~\"mqtt.*\",env=\"100%\"".parse().unwrap_or_default(),
            ..RulesOptions::default()
        };
        let a = &alerts()[0];
        // the first query after the rate's own (which turns a second into
        // a minute)
        assert_eq!(
            a.description(&o)
                .split("Top devices")
                .nth(1)
                .unwrap_or_default()
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
            selector: Selector::default(),
            ..RulesOptions::default()
        };
        assert_eq!(o.sel(""), "{}");
        assert_eq!(o.sel("kind=\"x\""), "{kind=\"x\"}");
        assert!(rules_yaml(&o).contains("absent(up{})"));
    }
}
