//! The runbook the alerts link to (`docs/runbook.md`, checked by a test;
//! `rules --format runbook` prints it): a section per reason of the table,
//! with its meaning, recommended action and how to confirm it, and a section
//! per alert that is not about one reason. Each alert's `runbook_url` points
//! at its section's GitHub anchor.

use std::fmt::Write as _;

use super::{alerts, About, RulesOptions, Watch, RATE_5M};
use crate::core::flapping::FlapKind;
use crate::core::reasons::{Reason, TABLE};

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
            "Read the page's answers in turn. **Devices**: a few \
            named devices are weak links (their radio, power or \
            firmware); \"no single device stands out\" with \
            thousands of devices is a shared cause. **Networks**: \
            one /24 or /48 holding most of the storm is one site, \
            carrier or NAT pool losing its uplink; none standing out \
            is fleet-wide (the broker, or the internet path to it). \
            **Nodes**: one node with most of the share (\"80% on \
            emqx@n2\") is that node's NIC, host or zone: check it and \
            move its clients; a share close to each node's usual one \
            is the clients' side. **Lifetime**: connections that \
            lived minutes to hours before timing out were healthy \
            until something changed; under 5 s is a client that \
            connects and never pings (a keep-alive set too short, \
            or an SDK bug). Dashboard \"MQTT disconnects\", row \
            \"Where keepalive_timeout comes from\", shows all three. \
            Check `mqtt_event_delay_seconds` and the broker's CPU; \
            a broker restart (`go_away`) at the same time explains it."
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
            "Read the lifetime first. Every connection cut at one \
            lifetime is a timer, not a failure: 300-360 s is the idle \
            timeout of AWS's NLB and NAT gateway (350 s), 240 s \
            Azure's load balancer and NAT, 600 s Google Cloud's; set \
            the clients' keep-alive below it (for example 60 s) or \
            raise the timeout. 3600 s and its multiples are a token \
            or certificate lifetime. Lifetimes spread over minutes to \
            days are real losses: then read the **network** (one NAT \
            gateway, carrier or region, seen as one /24 or /48) and \
            the **node** (one broker node's host or zone). Compare with \
            `keepalive_timeout`: the same storm in both is the network."
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

/// What to do for the alerts that are not about one reason.
fn alert_section(about: About) -> &'static str {
    match about {
        About::Flapping(FlapKind::Reconnect) => {
            "Client IDs disconnecting 15 or more times within a minute, \
            for any reason. `/api/v1/flapping` and the \"MQTT flapping\" \
            dashboard list them with their peer addresses; \
            `/api/v1/top` shows which reasons they disconnect with. \
            A firmware release with a reconnect bug, a load balancer \
            cutting idle connections, or an expired credential retried \
            in a loop are the usual causes. A client ID flapping by \
            takeover is not counted here (it is one problem, a shared ID: \
            see MQTTClientIdConflictFlapping). Inhibited while the broker \
            says go_away."
        }
        About::Exporter(Watch::Down) => {
            "Prometheus cannot scrape the exporter. Check the process, its \
            `--web.listen-address`, its web config (TLS, basic auth) and \
            the scrape job."
        }
        About::Exporter(Watch::Absent) => {
            "No target matches the rules' selector (by default \
            `job=\"mqtt-disconnect-exporter\"`): the exporter was removed \
            or its scrape job or ServiceMonitor changed. If the job has \
            another name, generate the rules for it: \
            `mqtt-disconnect-exporter rules --rules.selector 'job=\"NAME\"'`."
        }
        About::Exporter(Watch::BrokerDisconnected) => {
            "The exporter's log says why it cannot connect (refused \
            credentials, TLS, DNS). While it lasts, no event is counted; \
            with a persistent session, QoS 1 events queue at the broker up \
            to its queue limit."
        }
        About::Exporter(Watch::NoEvents) => {
            "Connected but nothing arrives. Check `/-/ready` (a refused \
            subscription is logged as an error naming the topic), the EMQX \
            rule or `sys_topics.sys_event_messages`, and the exporter \
            user's ACL."
        }
        About::Exporter(Watch::EventErrors) => {
            "`mqtt_exporter_event_errors_total{error}` says why events are \
            rejected; the first rejection of each kind is logged at warn \
            with its topic."
        }
        // an alert about a reason reads that reason's section
        About::Reason | About::Flapping(FlapKind::Takeover) => "",
    }
}

/// The runbook, with `o`'s severity names.
pub fn runbook_md(o: &RulesOptions) -> String {
    let mut out = String::from(
        "# Runbook: MQTT disconnect reasons\n\n\
         <!-- Generated by `mqtt-disconnect-exporter rules --format runbook` from the reason \
         table in code; do not edit by hand. -->\n\n\
         Each alert of `alerts/mqtt-disconnect-exporter.rules.yml` links to a section here. \
         Meaning and recommended action are the reference table's (`mqtt-disconnect-exporter \
         reasons`). Pages (severity critical) name their top devices; \
         `/api/v1/top?reason=REASON` on the exporter lists more, with their addresses.\n\n",
    );
    let all = alerts();
    for row in &TABLE {
        let _ = writeln!(out, "## {}\n", row.id);
        let _ = writeln!(
            out,
            "- Category: {}; severity: {}",
            row.category,
            o.severity(row.severity)
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
            "- Devices: `topk(5, mqtt_client_top_disconnects{{reason=\"{}\"}})`",
            row.id
        );
        let _ = writeln!(
            out,
            "- Query: `{RATE_5M}{{reason=\"{}\"}}` (recorded), or \
             `sum by (job) (rate(mqtt_client_disconnects_total{{reason=\"{}\"}}[5m]))`\n",
            row.id, row.id
        );
    }
    for a in all.iter().filter(|a| a.reason.is_none()) {
        let _ = writeln!(out, "## {}\n", a.name);
        let _ = writeln!(
            out,
            "- Severity: {}\n- {}\n- {}\n",
            o.severity(a.severity()),
            a.summary,
            alert_section(a.about)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_links_to_a_section_of_the_runbook() {
        let o = RulesOptions::default();
        let text = runbook_md(&o);
        // GitHub's anchor of a heading: lower case, spaces as dashes
        let anchors: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| h.to_lowercase().replace(' ', "-"))
            .collect();
        for a in alerts() {
            assert!(
                anchors.contains(&a.anchor()),
                "{} -> #{}",
                a.name,
                a.anchor()
            );
            assert!(
                !alert_section(a.about).is_empty() || a.reason.is_some(),
                "{}",
                a.name
            );
        }
        assert_eq!(
            alerts()
                .iter()
                .find(|a| a.name == "MQTTReconnectFlapping")
                .map(|a| o.runbook(a)),
            Some(format!(
                "{}#mqttreconnectflapping",
                super::super::DEFAULT_RUNBOOK_URL
            ))
        );
    }
}
