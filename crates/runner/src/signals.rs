//! The one signal handler: Ctrl-C, SIGTERM (systemd stop, CI cancel) and
//! SIGHUP (a closed terminal) are handled the same way. The first stops new
//! work, the second aborts calls in flight; the run still ends with a report.

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Interrupts seen so far: 1 stops starting new work, 2 aborts calls in flight.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<u32>);

impl Interrupt {
    /// An interrupt that is pressed through the returned sender
    /// (`send_modify(|n| *n += 1)`); for tests and embedders.
    pub fn channel() -> (watch::Sender<u32>, Interrupt) {
        let (tx, rx) = watch::channel(0);
        (tx, Interrupt(rx))
    }

    /// Resolves at the first press.
    pub async fn pressed(&self) {
        self.wait_for(1).await;
    }

    /// True once the first press came.
    pub fn is_pressed(&self) -> bool {
        self.presses() > 0
    }

    pub(crate) fn presses(&self) -> u32 {
        *self.0.borrow()
    }

    pub(crate) async fn wait_for(&self, presses: u32) {
        let mut rx = self.0.clone();
        if rx.wait_for(|n| *n >= presses).await.is_err() {
            // The sender is gone: nobody can press any more.
            std::future::pending::<()>().await;
        }
    }
}

/// The process's signals, listened to from creation until drop.
#[derive(Debug)]
pub struct Signals {
    interrupt: Interrupt,
    task: JoinHandle<()>,
}

impl Signals {
    /// Starts listening for Ctrl-C, SIGTERM and SIGHUP. Call it inside a
    /// tokio runtime, as early as possible, so that a signal during the
    /// planning still ends with a report. If a handler cannot be installed
    /// the run goes on without it (and says so in the log).
    pub fn listen() -> Self {
        let (presses, interrupt) = Interrupt::channel();
        // The handlers are installed here, before `listen` returns, so a
        // signal that comes right after (e.g. once a server announced its
        // address) is never missed.
        let listener = Listener::new();
        let task = tokio::spawn(async move {
            let mut next = match listener {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!("could not listen for Ctrl-C and SIGTERM: {err}");
                    return;
                }
            };
            while next.signal().await {
                presses.send_modify(|n| *n += 1);
            }
        });
        Self { interrupt, task }
    }

    /// The presses, to hand to the run.
    pub fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(unix)]
struct Listener {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Listener {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal; false when signals can no longer be received.
    async fn signal(&mut self) -> bool {
        tokio::select! {
            r = self.int.recv() => r.is_some(),
            r = self.term.recv() => r.is_some(),
            r = self.hup.recv() => r.is_some(),
        }
    }
}

#[cfg(not(unix))]
struct Listener;

#[cfg(not(unix))]
impl Listener {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn signal(&mut self) -> bool {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
