//! What a person sees while `apply` runs: on a terminal an indicatif bar
//! overall and a line per sandbox, otherwise a log line every few seconds.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atsprov_model::report::Status;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// The bars on screen, if any, so that log lines can be drawn above them.
static ACTIVE_BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Stderr for log lines: while a progress bar is drawn, it is hidden for the
/// time of the write, so lines and bar never overwrite each other.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// A log line that cannot be written (`2>/dev/full`, a closed pipe) is
/// dropped silently: logging must never stop or crash a run.
impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bars = ACTIVE_BARS.lock().map(|b| b.clone()).unwrap_or(None);
        let write = || io::stderr().lock().write_all(buf);
        // The error has nowhere to go: stderr is where it would be said.
        let _ = match bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Counts and the display; owned by the collector alone.
pub(crate) struct Progress {
    mode: ProgressMode,
    bars: Option<Bars>,
    total: u64,
    done: u64,
    created: u64,
    updated: u64,
    deleted: u64,
    failed: u64,
    started: Instant,
    last_log: Instant,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// One per sandbox, when there is more than one.
    sandboxes: Vec<(String, ProgressBar)>,
}

impl Progress {
    /// `work` is the number of items per sandbox.
    pub(crate) fn new(mode: ProgressMode, work: &[(String, u64)]) -> Self {
        let total = work.iter().map(|(_, n)| n).sum();
        let bars = (mode == ProgressMode::Bar).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(
                ProgressStyle::with_template(
                    "{spinner:.green} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg} (ETA {eta})",
                )
                .expect("progress template is valid")
                .progress_chars("=> "),
            );
            overall.enable_steady_tick(Duration::from_millis(120));
            let width = work.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
            let line = ProgressStyle::with_template(&format!(
                "  {{prefix:<{width}}} {{bar:20.cyan/blue}} {{pos}}/{{len}}"
            ))
            .expect("progress template is valid")
            .progress_chars("=> ");
            let sandboxes = if work.len() > 1 {
                work.iter()
                    .map(|(sandbox, n)| {
                        let bar = multi.add(ProgressBar::new(*n));
                        bar.set_style(line.clone());
                        bar.set_prefix(sandbox.clone());
                        (sandbox.clone(), bar)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if let Ok(mut active) = ACTIVE_BARS.lock() {
                *active = Some(multi.clone());
            }
            Bars {
                multi,
                overall,
                sandboxes,
            }
        });
        let now = Instant::now();
        Self {
            mode,
            bars,
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

    pub(crate) fn record(&mut self, sandbox: &str, status: Status) {
        self.done += 1;
        match status {
            Status::Created => self.created += 1,
            Status::Updated => self.updated += 1,
            Status::Deleted => self.deleted += 1,
            Status::Failed => self.failed += 1,
            Status::Unchanged | Status::Skipped => {}
        }
        // The message is made only when it is shown (a run may record 100,000 items).
        let msg = || {
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            format!(
                "created {} updated {} deleted {} failed {}, {rate:.1}/s",
                self.created, self.updated, self.deleted, self.failed
            )
        };
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bars) = &self.bars {
                    bars.overall.set_position(self.done);
                    bars.overall.set_message(msg());
                    if let Some((_, bar)) = bars.sandboxes.iter().find(|(s, _)| s == sandbox) {
                        bar.inc(1);
                    }
                }
            }
            ProgressMode::Log => {
                if self.last_log.elapsed() >= LOG_EVERY {
                    let msg = msg();
                    self.last_log = Instant::now();
                    tracing::info!("progress: {}/{} done, {msg}", self.done, self.total);
                }
            }
            ProgressMode::Hidden => {}
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bars) = &self.bars {
            if let Ok(mut active) = ACTIVE_BARS.lock() {
                *active = None;
            }
            for (_, bar) in &bars.sandboxes {
                bar.finish_and_clear();
            }
            bars.overall.finish_and_clear();
            let _ = bars.multi.clear();
        }
    }
}
