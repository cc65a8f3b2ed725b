//! Time series as training data: each chosen CSV column transformed as the model asks (log,
//! differences: `stipple_series::SeriesTransform`), then cut into every window of context +
//! horizon consecutive values, scaled by its own context (`stipple_series::windows`), one
//! channel per window. Columns are separate series of one shared model.

use std::path::Path;

use stipple_series::{read_csv_series, windows, SeriesError, SeriesTransform};

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
/// empty), applies `transform` to each and cuts the result into windows of `context +
/// horizon` values, one starting at every row. Missing or non-numeric cells, a non-positive
/// value under the log and series shorter than one window (with the rows the differences
/// consume) are errors that name the file, the row and the column.
pub fn load_series(path: &Path, wanted: &[String], context: usize, horizon: usize, transform: &SeriesTransform) -> Result<SeriesSet, TrainError> {
    let table = read_csv_series(path, wanted).map_err(|e| TrainError::Series(e.to_string()))?;
    let length = context + horizon;
    let lost = transform.consumed();
    let mut set = SeriesSet { length, values: vec![], names: vec![], columns: table.names.clone() };
    for (name, column) in table.names.iter().zip(&table.columns) {
        let at = |what: String| TrainError::Series(format!("{}: column \"{name}\" {what}", path.display()));
        if lost > 0 && column.len() < length + lost {
            return Err(at(format!(
                "has {} rows; windows of {context} context + {horizon} horizon values after the transform ({}) need at least {} rows \
                 ({lost} consumed by the differences); lower --context or --horizon, or difference at a shorter lag",
                column.len(),
                transform.describe(),
                length + lost
            )));
        }
        let series = transform.apply(column).map_err(|e| match e {
            SeriesError::NotPositive { index, value } => at(format!("row {}: {value} is not positive, and --log (Box-Cox λ = 0) needs every value above 0", index + 2)),
            e => at(e.to_string()),
        })?;
        let cut = windows(&series, context, horizon, 1).map_err(|e| at(format!("has {} rows: {e}; lower --context or --horizon", column.len())))?;
        for (start, w) in cut.iter().enumerate() {
            set.values.extend(w.values.iter().map(|&v| v as f32));
            // The window's first transformed value belongs to the row `lost` further on.
            set.names.push(format!("{name}@{}", start + lost + 2));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_of_different_lengths_share_one_set() {
        // Two series in the wide layout: `b` ends three rows before `a`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.csv");
        let rows: String = (0..10).map(|t| if t < 7 { format!("{t},{}\n", 2 * t * t) } else { format!("{t},\n") }).collect();
        std::fs::write(&path, format!("a,b\n{rows}")).unwrap();
        let set = load_series(&path, &[], 3, 1, &SeriesTransform::default()).unwrap();
        assert_eq!(set.columns, ["a", "b"]);
        assert_eq!(set.len(), 7 + 4, "windows of 4 from 10 and from 7 values");
        assert_eq!(set.names[7], "b@2");
        assert_eq!(set.names.last().unwrap(), "b@5", "b's last window starts at its 4th value");
        let e = load_series(&path, &[], 6, 2, &SeriesTransform::default()).unwrap_err().to_string();
        assert!(e.contains("column \"b\" has 7 rows"), "{e}");
    }
}
