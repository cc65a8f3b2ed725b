//! Time series as training data: every window of context + horizon consecutive values of
//! each chosen CSV column, scaled by its own context (`stipple_series::windows`), one
//! channel per window. Columns are separate series of one shared model.

use std::path::Path;

use stipple_series::{read_csv_series, windows};

use super::TrainingSet;
use crate::TrainError;

/// Scaled windows of one length, stored contiguously.
#[derive(Clone, Debug)]
pub struct SeriesSet {
    /// Values per window (context + horizon).
    pub length: usize,
    /// `n × length` scaled values.
    pub values: Vec<f32>,
    /// `column@row` of each window's first value (row 1-based, counting the header as row 1).
    pub names: Vec<String>,
    /// The columns read, in order.
    pub columns: Vec<String>,
}

/// Reads the numeric columns `wanted` of the CSV file `path` (every numeric column when
/// empty) and cuts each into windows of `context + horizon` values, one starting at every
/// row. Missing or non-numeric cells and series shorter than one window are errors that
/// name the file, the row and the column.
pub fn load_series(path: &Path, wanted: &[String], context: usize, horizon: usize) -> Result<SeriesSet, TrainError> {
    let table = read_csv_series(path, wanted).map_err(|e| TrainError::Series(e.to_string()))?;
    let length = context + horizon;
    let mut set = SeriesSet { length, values: vec![], names: vec![], columns: table.names.clone() };
    for (name, column) in table.names.iter().zip(&table.columns) {
        let cut = windows(column, context, horizon, 1).map_err(|e| {
            TrainError::Series(format!("{}: column \"{name}\" has {} rows: {e}; lower --context or --horizon", path.display(), column.len()))
        })?;
        for (start, w) in cut.iter().enumerate() {
            set.values.extend(w.values.iter().map(|&v| v as f32));
            set.names.push(format!("{name}@{}", start + 2));
        }
    }
    Ok(set)
}

impl TrainingSet for SeriesSet {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn sample_dims(&self) -> Vec<usize> {
        vec![1, self.length]
    }

    fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32> {
        assert_eq!(indices.len(), flip.len(), "batch: one flip flag per index");
        let mut out = Vec::with_capacity(indices.len() * self.length);
        for (&i, &reverse) in indices.iter().zip(flip) {
            let w = &self.values[i * self.length..(i + 1) * self.length];
            if reverse {
                out.extend(w.iter().rev());
            } else {
                out.extend_from_slice(w);
            }
        }
        out
    }

    fn names(&self) -> &[String] {
        &self.names
    }
}
