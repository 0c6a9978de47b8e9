//! One shutdown signal, passed down to every task, and the other signals.
//!
//! [`channel`] makes a [`Trigger`] (held by `main`, fired on SIGINT or
//! SIGTERM) and a [`Shutdown`] that tasks clone and await. Like mini-redis,
//! this is a value passed in, not global state. SIGHUP means "re-read now":
//! each edge listens for it and re-reads what it owns (the web config, the
//! password file); SIGUSR1 and SIGUSR2 are logged and ignored
//! ([`log_other_signals`]), so none of them kills the exporter.

use tokio::sync::watch;

/// Fires the shutdown.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Resolves once shutdown has been triggered.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Waits for the shutdown signal (returns at once if it already fired, or
    /// if the trigger was dropped).
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    /// Whether shutdown has fired (or its trigger is gone), without waiting.
    pub fn is_fired(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// Logs SIGHUP (the edges re-read their files on it), SIGUSR1 and SIGUSR2
/// (ignored), for as long as the runtime runs.
pub async fn log_other_signals() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) else {
            tracing::error!("cannot listen for SIGHUP, SIGUSR1 and SIGUSR2");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => tracing::info!(signal = "SIGHUP", "re-reading the web config and the password file"),
                _ = usr1.recv() => tracing::info!(signal = "SIGUSR1", "signal ignored"),
                _ = usr2.recv() => tracing::info!(signal = "SIGUSR2", "signal ignored"),
            }
        }
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("ctrl-c")
    }
}
