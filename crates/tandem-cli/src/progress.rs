//! Logging and progress: `tracing` to standard error (filtered by `RUST_LOG`, default `info`),
//! indicatif bars when standard error is a terminal, plain log lines otherwise.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tandem::train::EpochRecord;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: `RUST_LOG` if set, else `info`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

/// Whether progress bars are drawn (standard error is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar of `len` items (hidden when not interactive).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(len)
        .with_style(style)
        .with_prefix(what.to_string())
}

/// A spinner for work of unknown length (hidden when not interactive).
pub fn spinner(what: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let s = ProgressBar::new_spinner()
        .with_style(style)
        .with_message(what.to_string());
    s.enable_steady_tick(Duration::from_millis(120));
    s
}

/// Training progress, fed once per epoch: epoch, steps, per-task training loss, the main
/// metric, samples per second and the time left.
pub struct TrainProgress {
    bar: ProgressBar,
    epochs: usize,
    steps_per_epoch: usize,
    samples_per_epoch: usize,
    main: (String, String),
    last: Instant,
}

impl TrainProgress {
    /// Progress of `epochs` epochs of `steps_per_epoch` steps of `batch_size` samples;
    /// `main` is the (task, metric) pair shown.
    pub fn new(
        epochs: usize,
        steps_per_epoch: usize,
        batch_size: usize,
        main: (String, String),
    ) -> Self {
        let bar = if interactive() {
            let style = ProgressStyle::with_template(
                "{prefix:>10} [{bar:30}] epoch {pos}/{len} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let b = ProgressBar::new(epochs as u64)
                .with_style(style)
                .with_prefix("training");
            b.enable_steady_tick(Duration::from_millis(500));
            b
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            epochs,
            steps_per_epoch,
            samples_per_epoch: steps_per_epoch * batch_size,
            main,
            last: Instant::now(),
        }
    }

    /// Records one finished epoch.
    pub fn epoch(&mut self, r: &EpochRecord) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-9);
        self.last = now;
        let rate = self.samples_per_epoch as f64 / secs;
        let losses: Vec<String> = r
            .train_loss
            .iter()
            .map(|(t, l)| format!("{t} {l:.4}"))
            .collect();
        let metric = r
            .val_metrics
            .get(&self.main.0)
            .and_then(|m| m.get(&self.main.1))
            .map(|v| format!("val {} {} {v:.2}", self.main.0, self.main.1))
            .unwrap_or_default();
        let step = (r.epoch + 1) * self.steps_per_epoch;
        let line = format!(
            "epoch {}/{} step {step} | loss {} | {metric} | {rate:.0} samples/s",
            r.epoch + 1,
            self.epochs,
            losses.join(", "),
        );
        if self.bar.is_hidden() {
            tracing::info!("{line}");
        } else {
            self.bar.println(&line);
            self.bar
                .set_message(format!("step {step}, {rate:.0} samples/s, {metric}"));
            self.bar.inc(1);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
