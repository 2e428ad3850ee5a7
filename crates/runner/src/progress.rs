//! What a person sees while `apply` runs: an indicatif bar on a terminal, or
//! a log line every few seconds otherwise.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atsprov_model::report::Status;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar on stderr (stderr is a terminal, not quiet, text logs).
    Bar,
    /// A log line (tracing, info) every few seconds.
    Log,
    /// Nothing (`--quiet`).
    Hidden,
}

const LOG_EVERY: Duration = Duration::from_secs(3);

/// The bar on screen, if any, so that log lines can be drawn above it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Stderr for log lines: while a progress bar is drawn, it is hidden for the
/// time of the write, so lines and bar never overwrite each other.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bar = ACTIVE_BAR.lock().map(|b| b.clone()).unwrap_or(None);
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().lock().write(buf)),
            None => io::stderr().lock().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Counts and the display; owned by the collector alone.
pub(crate) struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    created: u64,
    updated: u64,
    deleted: u64,
    failed: u64,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, total: u64) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.green} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg} (ETA {eta})",
                )
                .expect("progress template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        let now = Instant::now();
        Self {
            mode,
            bar,
            total,
            done: 0,
            created: 0,
            updated: 0,
            deleted: 0,
            failed: 0,
            started: now,
            last_log: now,
        }
    }

    pub(crate) fn record(&mut self, status: Status) {
        self.done += 1;
        match status {
            Status::Created => self.created += 1,
            Status::Updated => self.updated += 1,
            Status::Deleted => self.deleted += 1,
            Status::Failed => self.failed += 1,
            Status::Unchanged | Status::Skipped => {}
        }
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let msg = format!(
            "created {} updated {} deleted {} failed {}, {rate:.1}/s",
            self.created, self.updated, self.deleted, self.failed
        );
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(self.done);
                    bar.set_message(msg);
                }
            }
            ProgressMode::Log => {
                if self.last_log.elapsed() >= LOG_EVERY {
                    self.last_log = Instant::now();
                    tracing::info!("progress: {}/{} done, {msg}", self.done, self.total);
                }
            }
            ProgressMode::Hidden => {}
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = None;
            }
            bar.finish_and_clear();
        }
    }
}
