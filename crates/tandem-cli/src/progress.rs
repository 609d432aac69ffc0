//! Logging and progress: `tracing` to standard error (filtered by `RUST_LOG`, default `info`),
//! indicatif bars when standard error is a terminal, plain log lines otherwise.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tandem::train::{EpochRecord, StepInfo};
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

/// Training progress: a bar that advances at every optimizer step (epoch, step, samples/s,
/// ETA, and the last epoch's per-task losses and main metric), and one line per epoch with the
/// per-task training losses and the main validation metric. Without a terminal, only the
/// epoch lines, as log records.
pub struct TrainProgress {
    bar: ProgressBar,
    epochs: usize,
    steps_per_epoch: usize,
    batch_size: usize,
    main: (String, String),
    /// Step and time of the last rate measurement.
    mark: (u64, Instant),
    rate: f64,
    last_epoch: String,
    /// End of the previous epoch.
    epoch_mark: Instant,
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
                "{prefix:>10} [{bar:30}] step {pos}/{len} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let b = ProgressBar::new((epochs * steps_per_epoch) as u64)
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
            batch_size,
            main,
            mark: (0, Instant::now()),
            rate: 0.0,
            last_epoch: String::new(),
            epoch_mark: Instant::now(),
        }
    }

    /// Records one optimizer step.
    pub fn step(&mut self, info: &StepInfo) {
        if self.bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        let secs = now.duration_since(self.mark.1).as_secs_f64();
        if secs >= 0.5 || self.mark.0 > info.step {
            let steps = info.step.saturating_sub(self.mark.0);
            self.rate = (steps as usize * self.batch_size) as f64 / secs.max(1e-9);
            self.mark = (info.step, now);
        }
        self.bar.set_position(info.step);
        self.bar.set_message(format!(
            "epoch {}/{} | {:.0} samples/s{}",
            info.epoch + 1,
            self.epochs,
            self.rate,
            self.last_epoch
        ));
    }

    /// Records one finished epoch.
    pub fn epoch(&mut self, r: &EpochRecord) {
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
        let now = Instant::now();
        let secs = now.duration_since(self.epoch_mark).as_secs_f64().max(1e-9);
        self.epoch_mark = now;
        let rate = (self.steps_per_epoch * self.batch_size) as f64 / secs;
        let line = format!(
            "epoch {}/{} step {step} | loss {} | {metric} | {rate:.0} samples/s",
            r.epoch + 1,
            self.epochs,
            losses.join(", "),
        );
        self.last_epoch = format!(" | loss {} | {metric}", losses.join(", "));
        if self.bar.is_hidden() {
            tracing::info!("{line}");
        } else {
            self.bar.println(&line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
