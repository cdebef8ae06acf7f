//! Progress on the operator's terminal: an import's stages, and a spinner for a long step that
//! has no countable parts (migrations, a backup's one-snapshot copy, a restore's checks), drawn
//! with `indicatif` on stderr when stderr is a terminal, nothing at all otherwise (a script, a
//! pipe, a log file sees no control characters). Owns indicatif; knows nothing of what the
//! rows are.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::import::{Progress, Stage};

/// An import's progress: a bar while rows are checked, a spinner while they are committed.
pub struct ImportProgress {
    bar: ProgressBar,
}

impl ImportProgress {
    /// Drawn on stderr if it is a terminal, hidden otherwise.
    pub fn on_stderr() -> Self {
        Self::drawn(std::io::stderr().is_terminal())
    }

    /// Drawn on stderr when `visible`, else hidden (draws nothing, costs an atomic or two).
    pub fn drawn(visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Removes the bar, leaving the terminal as it was.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for ImportProgress {
    fn stage(&self, stage: Stage, rows: u64) {
        match stage {
            Stage::Checking => {
                self.bar.set_length(rows);
                self.bar.set_position(0);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                self.bar.set_message("checking");
            }
            Stage::Committing => {
                self.bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                self.bar
                    .set_message(format!("committing {rows} rows in one transaction"));
                self.bar.enable_steady_tick(Duration::from_millis(120));
            }
        }
    }

    fn row(&self) {
        self.bar.inc(1);
    }
}

/// A long step shown as a spinner with its elapsed time, cleared when the step ends (dropped).
pub struct Activity {
    bar: ProgressBar,
}

impl Activity {
    /// `what` is going on, drawn on stderr if it is a terminal, hidden otherwise.
    pub fn on_stderr(what: String) -> Self {
        Self::drawn(std::io::stderr().is_terminal(), what)
    }

    fn drawn(visible: bool, what: String) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what);
        if visible {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Self { bar }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_draws_nothing_and_still_counts() {
        let progress = ImportProgress::drawn(false);
        assert!(!progress.is_visible());
        progress.stage(Stage::Checking, 3);
        for _ in 0..3 {
            progress.row();
        }
        assert_eq!(progress.bar.position(), 3);
        progress.stage(Stage::Committing, 3);
        progress.finish();
    }

    #[test]
    fn a_hidden_activity_draws_nothing() {
        let activity = Activity::drawn(false, "backing up".into());
        assert!(activity.bar.is_hidden());
        drop(activity);
    }
}
