//! Sample-quality figures measured while a run trains (by an evaluator observer, e.g.
//! `stipple_eval::TrainingMetrics`): one JSON line per measurement in `metrics.jsonl`, the
//! same figures as TensorBoard scalars under `eval/`, and `metrics.png`, the companion of
//! `loss.png`: one chosen figure (the Fréchet distance) against the step.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use stipple_pipeline::write_png_with_text;

use super::events::{EventWriter, drop_events_after};
use super::plot::render_loss_plot;
use super::{drop_lines_after, io_err, TENSORBOARD_DIR};
use crate::TrainError;

/// The JSON-lines log of the measurements inside a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The plot of the chosen figure against the step inside a run folder.
pub const METRICS_PLOT: &str = "metrics.png";

/// The open metrics files of one training session.
pub struct MetricsLog {
    run: PathBuf,
    log: File,
    events: EventWriter,
    /// The figure plotted.
    plotted: &'static str,
    /// `(step, plotted figure)` of every measurement of the run.
    points: Vec<(u64, f64)>,
}

impl MetricsLog {
    /// Opens (appends to) the metrics of `run` after dropping the lines and events of steps
    /// after `step` (the checkpoint a resumed session replays from); its events go to a new
    /// event file of the run's TensorBoard folder. `plotted` names the figure drawn in
    /// [`METRICS_PLOT`].
    pub fn open(run: &Path, step: usize, plotted: &'static str) -> Result<Self, TrainError> {
        let path = run.join(METRICS_FILE);
        drop_lines_after(&path, step)?;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let points = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| Some((v["step"].as_u64()?, v[plotted].as_f64()?)))
            .collect();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        let dir = run.join(TENSORBOARD_DIR);
        drop_events_after(&dir, step).map_err(io_err(&dir))?;
        let events = EventWriter::create(&dir).map_err(io_err(&dir))?;
        Ok(Self { run: run.to_path_buf(), log, events, plotted, points })
    }

    /// Logs the figures of `step`: a JSON line
    /// `{"step":…, name:value, …}`, TensorBoard scalars `eval/name`, and `metrics.png`
    /// redrawn (written under a temporary name and renamed).
    pub fn log(&mut self, step: usize, figures: &[(&str, f64)]) -> Result<(), TrainError> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), step.into());
        for (name, value) in figures {
            line.insert((*name).into(), serde_json::Number::from_f64(*value).map_or(serde_json::Value::Null, Into::into));
        }
        let path = self.run.join(METRICS_FILE);
        self.log.write_all(format!("{}\n", serde_json::Value::Object(line)).as_bytes()).map_err(io_err(&path))?;
        let tagged: Vec<(String, f64)> = figures.iter().map(|(n, v)| (format!("eval/{n}"), *v)).collect();
        let scalars: Vec<(&str, f64)> = tagged.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        self.events.scalars(step, &scalars).map_err(io_err(self.events.path()))?;
        if let Some((_, value)) = figures.iter().find(|(n, _)| *n == self.plotted) {
            self.points.push((step as u64, *value));
            let plot = self.run.join(METRICS_PLOT);
            let points: Vec<_> = self.points.iter().map(|&(s, v)| (s, v, Some(v))).collect();
            let img = render_loss_plot(&points).map_err(|reason| TrainError::Io { path: plot.clone(), reason })?;
            write_png_with_text(&DynamicImage::ImageRgb8(img), &plot, &[])?;
        }
        Ok(())
    }
}
