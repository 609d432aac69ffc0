//! Training curves as SVG (plotters' SVG backend: no system fonts needed).
//!
//! - `loss.svg`: training (solid) and validation (dashed-looking thin) loss per task, log scale.
//! - `metrics.svg`: each task's primary validation metric (NME or error, percent).
//! - `weights.svg`: the mean weight each task's loss received per epoch.
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use tandem::tensor::TaskMap;
use tandem::train::History;

/// One named line: `(epoch, value)` points.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    thin: bool,
}

/// Writes the three plots of `history` into `dir`.
pub fn write_all(dir: &Path, history: &History) -> Result<()> {
    let e = |r: &tandem::train::EpochRecord| r.epoch as f64 + 1.0;
    let mut loss = Vec::new();
    let mut metric = Vec::new();
    let mut weight = Vec::new();
    for task in task_names(history) {
        let series = |f: &dyn Fn(&tandem::train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .epochs
                .iter()
                .filter_map(|r| f(r).filter(|v| v.is_finite()).map(|v| (e(r), v)))
                .collect()
        };
        loss.push(Line {
            name: format!("{task} (train)"),
            points: series(&|r| r.train_loss.get(&task).copied()),
            thin: false,
        });
        loss.push(Line {
            name: format!("{task} (val)"),
            points: series(&|r| r.val_loss.get(&task).copied()),
            thin: true,
        });
        metric.push(Line {
            name: task.clone(),
            points: series(&|r| {
                r.val_metrics.get(&task).and_then(|m| {
                    m.get("nme")
                        .or_else(|| m.get("error"))
                        .or_else(|| m.values().next())
                        .copied()
                })
            }),
            thin: false,
        });
        weight.push(Line {
            name: task.clone(),
            points: series(&|r| r.weights.get(&task).copied()),
            thin: false,
        });
    }
    chart(&dir.join("loss.svg"), "loss per task", "loss", &loss, true)?;
    chart(
        &dir.join("metrics.svg"),
        "validation metric per task (NME or error, %)",
        "%",
        &metric,
        false,
    )?;
    chart(
        &dir.join("weights.svg"),
        "task weights",
        "weight",
        &weight,
        false,
    )
}

/// Every task named anywhere in the history, in first-seen order.
fn task_names(history: &History) -> Vec<String> {
    let mut names: TaskMap<()> = TaskMap::new();
    for r in &history.epochs {
        for (t, _) in r.val_loss.iter().chain(r.train_loss.iter()) {
            if names.get(t).is_none() {
                names.insert(t, ());
            }
        }
    }
    names.keys().map(str::to_string).collect()
}

fn chart(path: &Path, title: &str, y_desc: &str, lines: &[Line], log: bool) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    let all = lines.iter().flat_map(|l| l.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(1.0f64, f64::max);
    let (mut y_min, mut y_max) = all
        .filter(|p| !log || p.1 > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !y_min.is_finite() || !y_max.is_finite() {
        (y_min, y_max) = if log { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    if y_max <= y_min {
        y_max = y_min + y_min.abs().max(1e-3);
    }
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let x_range = 1.0..x_max.max(2.0);
    let style = |i: usize, thin: bool| {
        let c = Palette99::pick(i / if log { 2 } else { 1 });
        if thin {
            c.stroke_width(1)
        } else {
            c.stroke_width(2)
        }
    };
    macro_rules! draw_lines {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(y_desc)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, l) in lines.iter().enumerate() {
                let s = style(i, l.thin);
                let points: Vec<(f64, f64)> = l
                    .points
                    .iter()
                    .copied()
                    .filter(|p| !log || p.1 > 0.0)
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, s))
                    .map_err(|e| err(&e))?
                    .label(l.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], s));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    if log {
        let chart = builder
            .build_cartesian_2d(x_range, (y_min * 0.9..y_max * 1.1).log_scale())
            .map_err(|e| err(&e))?;
        draw_lines!(chart);
    } else {
        let pad = 0.05 * (y_max - y_min);
        let chart = builder
            .build_cartesian_2d(x_range, (y_min - pad)..(y_max + pad))
            .map_err(|e| err(&e))?;
        draw_lines!(chart);
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::train::EpochRecord;

    #[test]
    fn writes_three_svgs() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::default();
        for epoch in 0..3 {
            let l = 1.0 / (epoch as f64 + 1.0);
            h.epochs.push(EpochRecord {
                epoch,
                lr: 1e-3,
                train_loss: TaskMap::new().with("landmarks", l).with("smile", 0.5),
                val_loss: TaskMap::new().with("landmarks", l).with("smile", 0.6),
                train_eval_loss: None,
                val_metrics: TaskMap::new()
                    .with("landmarks", [("nme".to_string(), 10.0 * l)].into())
                    .with("smile", [("error".to_string(), 30.0)].into()),
                weights: TaskMap::new().with("landmarks", 1.0).with("smile", 0.01),
                active: vec!["landmarks".into(), "smile".into()],
                skipped_batches: 0,
            });
        }
        write_all(dir.path(), &h).unwrap();
        for f in ["loss.svg", "metrics.svg", "weights.svg"] {
            let s = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(s.starts_with("<svg"), "{f}");
            assert!(s.contains("landmarks"), "{f}");
        }
    }
}
