//! Progress for whatever waits (rollouts, watches, image builds, fan-outs, pipelines): live
//! indicatif lines on a terminal; elsewhere plain lines on stderr, one per change of state, so
//! that a CI log shows where the time went. Operations report through these and never draw
//! on stderr themselves.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{safe, Ui};

/// One line of progress: a spinner on a terminal, else nothing until something worth a line
/// of its own happens.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(super) fn new(ui: &Ui, tick: Duration) -> Progress {
        let bar = (ui.stderr_tty && !ui.json).then(|| {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(tick);
            b
        });
        Progress { bar }
    }

    /// A change of state: the live line on a terminal, a line of its own elsewhere.
    pub fn say(&self, text: impl std::fmt::Display) {
        let text = text.to_string();
        match &self.bar {
            Some(b) => b.set_message(safe(&text).into_owned()),
            None => {
                let _ = writeln!(std::io::stderr(), "{}", safe(&text));
            }
        }
    }

    /// Detail only a live line shows (the line cut to 100 characters); nothing elsewhere.
    pub fn hint(&self, text: &str) {
        if let Some(b) = &self.bar {
            b.set_message(safe(&text.chars().take(100).collect::<String>()).into_owned());
        }
    }

    /// A step worth a line of its own elsewhere; on a terminal, detail like `hint`.
    pub fn step(&self, text: &str) {
        match &self.bar {
            Some(_) => self.hint(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{}", safe(text));
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Progress of one piece of work per item (a repository), done at once: a live line each on a
/// terminal; elsewhere one line per item as it finishes. Shared by the threads doing the work.
pub struct FanOut {
    live: bool,
    what: String,
    labels: Vec<String>,
    bars: Vec<ProgressBar>,
    finished: AtomicUsize,
    // Kept so that the bars stay drawn until the work is done.
    _multi: MultiProgress,
}

impl FanOut {
    pub(super) fn new(ui: &Ui, what: &str, labels: Vec<String>) -> FanOut {
        let live = ui.stderr_tty && !ui.json;
        let multi = MultiProgress::with_draw_target(if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = labels
            .iter()
            .map(|label| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(safe(label).into_owned());
                bar.set_message(format!("{what}…"));
                if live {
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
                bar
            })
            .collect();
        FanOut {
            live,
            what: what.to_string(),
            labels,
            bars,
            finished: AtomicUsize::new(0),
            _multi: multi,
        }
    }

    /// Item `i` is finished; `state` says how ("finished", "failed: …").
    pub fn finished(&self, i: usize, state: String) {
        let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        let state = safe(&state).into_owned();
        if self.live {
            self.bars[i].finish_with_message(state);
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "[{n}/{}] {} {}: {state}",
                self.labels.len(),
                safe(&self.labels[i]),
                self.what
            );
        }
    }
}

/// The jobs of a pipeline as they change: a live line per job on a terminal, a line per change
/// elsewhere, with the end of a failing job's log under it.
pub struct Jobs {
    live: bool,
    multi: MultiProgress,
    style: ProgressStyle,
    bars: Vec<(i64, ProgressBar)>,
}

impl Jobs {
    pub(super) fn new(ui: &Ui) -> Jobs {
        let live = ui.stderr_tty && !ui.json;
        let multi = MultiProgress::with_draw_target(if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template("{spinner} {prefix:<24} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Jobs { live, multi, style, bars: Vec::new() }
    }

    /// Job `id` (`name`, in `stage`) is now `status`; `tail` is the end of its log when it
    /// failed.
    pub fn changed(&mut self, id: i64, name: &str, stage: &str, status: &str, tail: &[String]) {
        let (name, stage, status) = (safe(name), safe(stage), safe(status));
        let tail: Vec<_> = tail.iter().map(|l| safe(l)).collect();
        if !self.live {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "job {name} ({stage}): {status}");
            for l in &tail {
                let _ = writeln!(err, "  | {l}");
            }
            return;
        }
        for l in &tail {
            let _ = self.multi.println(format!("  {name} | {l}"));
        }
        let bar = match self.bars.iter().find(|(j, _)| *j == id) {
            Some((_, b)) => b.clone(),
            None => {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(self.style.clone());
                b.set_prefix(format!("{name} ({stage})"));
                b.enable_steady_tick(Duration::from_millis(100));
                self.bars.push((id, b.clone()));
                b
            }
        };
        if matches!(&*status, "success" | "failed" | "canceled" | "skipped") {
            bar.finish_with_message(status.to_string());
        } else {
            bar.set_message(status.to_string());
        }
    }
}

impl Ui {
    /// A line of progress for one thing that waits; `tick` paces its spinner.
    pub fn progress(&self, tick: Duration) -> Progress {
        Progress::new(self, tick)
    }

    /// Progress of the same work on many items at once.
    pub fn fan_out(&self, what: &str, labels: Vec<String>) -> FanOut {
        FanOut::new(self, what, labels)
    }

    /// Progress of a pipeline's jobs.
    pub fn jobs(&self) -> Jobs {
        Jobs::new(self)
    }
}
