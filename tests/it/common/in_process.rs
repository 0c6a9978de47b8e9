//! The exporter run inside the test process, as mini-redis's tests run
//! their server: the flags are read as `main` reads them, `run` is called
//! on its own runtime, and the test talks to it over real HTTP on the
//! ports it bound (port 0 picks free ones). For tests that need no log
//! line and no process of their own; the others start the binary
//! ([`super::Exporter`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mqtt_disconnect_exporter::cli::Cli;
use mqtt_disconnect_exporter::core::status::Status;
use mqtt_disconnect_exporter::edge::shutdown::{self, Trigger};
use mqtt_disconnect_exporter::edge::source::SourceSettings;

/// A running exporter, stopped (and waited for) on drop.
pub struct InProcess {
    /// Every address it listens on, in the order given.
    pub addresses: Vec<SocketAddr>,
    /// The first one's port.
    pub web_port: u16,
    /// What the sources report: readiness, the last error, the snapshots.
    pub status: Arc<Status>,
    trigger: Trigger,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Runs the exporter with `args` (the flags of `serve`) until dropped.
    pub fn start(args: &[&str]) -> InProcess {
        InProcess::launch(args, None)
    }

    /// Runs the exporter with `args`, its sources replaced by `sources`.
    pub fn with_sources(args: &[&str], sources: &[SourceSettings]) -> InProcess {
        InProcess::launch(args, Some(sources.to_vec()))
    }

    fn launch(args: &[&str], sources: Option<Vec<SourceSettings>>) -> InProcess {
        let argv = std::iter::once(&"mqtt-disconnect-exporter").chain(args);
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("flags {args:?}: {e}"));
        let mut config = cli
            .serve
            .config(None, "in-process")
            .unwrap_or_else(|e| panic!("flags {args:?}: {e}"));
        if let Some(sources) = sources {
            config.sources = sources;
        }
        let (trigger, shutdown) = shutdown::channel();
        let status = Arc::new(Status::new(prometheus::Registry::new()));
        let (bound, addresses) = std::sync::mpsc::channel();
        let served = Arc::clone(&status);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listeners = mqtt_disconnect_exporter::bind(&config.web.listen)
                    .await
                    .unwrap();
                let local: Vec<SocketAddr> =
                    listeners.iter().map(|l| l.local_addr().unwrap()).collect();
                bound.send(local).unwrap();
                mqtt_disconnect_exporter::run(config, listeners, served, shutdown)
                    .await
                    .unwrap();
            });
        });
        let addresses = addresses
            .recv_timeout(Duration::from_secs(20))
            .expect("the exporter to bind its listeners");
        InProcess {
            web_port: addresses.first().map_or(0, SocketAddr::port),
            addresses,
            status,
            trigger,
            thread: Some(thread),
        }
    }
}

impl InProcess {
    /// Runs the exporter with `args` and `--web.listen-address 127.0.0.1:0`.
    pub fn on_free_port(args: &[&str]) -> InProcess {
        let mut all = args.to_vec();
        all.extend(["--web.listen-address", "127.0.0.1:0"]);
        InProcess::start(&all)
    }

    /// Waits until every source is ready.
    pub fn wait_ready(&self) {
        super::wait_for("the exporter to be ready", Duration::from_secs(20), || {
            self.status.is_ready().then_some(())
        });
    }

    pub fn metrics(&self) -> String {
        super::scrape(self.web_port)
    }

    /// Value of one series, e.g. `mqtt_client_disconnects_total{reason="normal"}`.
    pub fn value(&self, series: &str) -> Option<f64> {
        super::metric(&self.metrics(), series)
    }

    /// Waits until `series` equals `want`; panics with the last value and
    /// each source's state.
    pub fn wait_value(&self, series: &str, want: f64) {
        super::wait_series(self.web_port, series, want, || {
            format!("{:?}", self.status.sources())
        });
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.trigger.fire();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
