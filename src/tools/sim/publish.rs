//! `simulate`: publish a [`Fleet`](crate::tools::sim::fleet::Fleet)'s events to a broker.
//!
//! The publisher runs rumqttc's event loop in its own task and counts PUBACKs,
//! so the summary it prints (events published, by kind and by canonical
//! reason) is what the broker accepted. `demo` uses the same publisher against
//! its embedded broker.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};

use crate::core::reasons;
use crate::edge::mqtt::connect_options;
use crate::edge::mqtt::settings::BrokerConfig;
use crate::edge::process::{init_tracing, run_until_signal, LogFormat, LogLevel};
use crate::edge::shutdown::Shutdown;
use crate::tools::sim::fleet::SimEvent;
use crate::tools::sim::pace::{Paced, Plan};

/// Where to publish.
#[derive(Debug, Clone)]
pub struct Target {
    /// Address, client ID, credentials, TLS.
    pub broker: BrokerConfig,
    /// Topic prefix; events go to `<prefix>/<kind>` (`$events` for TDMQ style).
    pub topic_prefix: String,
}

/// What was published and acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub published: u64,
    pub acknowledged: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Disconnects by canonical reason label.
    pub disconnects: BTreeMap<&'static str, u64>,
}

/// The `simulate` subcommand: connects like the exporter (credentials and
/// TLS included), publishes, prints the summary (as JSON with `json`); exit
/// 1 if the broker did not acknowledge everything.
pub fn main(
    plan: Plan,
    target: Target,
    json: bool,
    log_level: LogLevel,
    log_format: LogFormat,
) -> ExitCode {
    simulate(
        (log_level, log_format, json),
        |shutdown| run(plan, target, shutdown),
        write_summary,
        |s: &Summary| s.acknowledged >= s.published,
    )
}

/// A simulator's run to its end: logs set up, `run` until it ends or a
/// signal, the summary printed (as JSON with `json`, else by `text`); exit
/// 1 unless `ok` says the summary is a success.
pub fn simulate<S, F>(
    (log_level, log_format, json): (LogLevel, LogFormat, bool),
    run: impl FnOnce(Shutdown) -> F,
    text: fn(&S, &mut dyn Write) -> std::io::Result<()>,
    ok: impl Fn(&S) -> bool,
) -> ExitCode
where
    S: serde::Serialize,
    F: std::future::Future<Output = S>,
{
    init_tracing(log_level, log_format);
    let Some(summary) = run_until_signal(|shutdown| async move {
        Ok::<_, std::convert::Infallible>(run(shutdown).await)
    }) else {
        return ExitCode::FAILURE;
    };
    print(&summary, json, text);
    if ok(&summary) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a simulator's summary on stdout: as JSON with `json`, else as
/// `text` writes it. `simulate` and `simulate --ingest` share it.
pub fn print<S: serde::Serialize>(
    summary: &S,
    json: bool,
    text: impl FnOnce(&S, &mut dyn Write) -> std::io::Result<()>,
) {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(summary).unwrap_or_default()
        )
    } else {
        text(summary, &mut out)
    };
}

fn write_summary(summary: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "published {} events ({} acknowledged by the broker)",
        summary.published, summary.acknowledged
    )?;
    write_counts(summary, out)
}

/// What was sent, by kind and by the reason the exporter counts.
pub fn write_counts(summary: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    for (kind, n) in &summary.by_kind {
        writeln!(out, "  {kind:<22} {n}")?;
    }
    writeln!(out, "disconnects by reason:")?;
    for (reason, n) in &summary.disconnects {
        writeln!(out, "  {reason:<22} {n}")?;
    }
    Ok(())
}

/// Publishes until the duration passes or `shutdown` fires, then waits (up to
/// 30 s) for every PUBACK and disconnects.
pub async fn run(plan: Plan, target: Target, mut shutdown: Shutdown) -> Summary {
    let mut options = match connect_options(&target.broker) {
        Ok(options) => options,
        Err(e) => {
            tracing::error!(error = %e, "cannot prepare the broker connection");
            return Summary::default();
        }
    };
    options
        .set_max_packet_size(Some(1024 * 1024))
        .set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let acked = Arc::new(AtomicU64::new(0));
    let acks = Arc::clone(&acked);
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "simulator connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });

    let mut paced = Paced::new(&plan);
    let mut summary = Summary::default();
    let mut buf: Vec<SimEvent> = Vec::new();
    'outer: while paced.next(&mut shutdown, &mut buf).await {
        for event in buf.drain(..) {
            let topic = format!("{}/{}", target.topic_prefix, event.kind);
            let sent = tokio::select! {
                _ = shutdown.recv() => break 'outer,
                sent = client.publish(topic, QoS::AtLeastOnce, false, event.payload) => sent,
            };
            if sent.is_err() {
                break 'outer;
            }
            summary.published += 1;
            *summary.by_kind.entry(event.kind).or_default() += 1;
            if let Some(raw) = event.reason {
                *summary
                    .disconnects
                    .entry(reasons::classify(raw).as_str())
                    .or_default() += 1;
            }
        }
    }

    let drained = async {
        while acked.load(Ordering::Relaxed) < summary.published {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("not every event was acknowledged within 30 s");
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    summary.acknowledged = acked.load(Ordering::Relaxed);
    summary
}
