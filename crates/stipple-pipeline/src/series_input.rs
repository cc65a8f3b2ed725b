//! A series to forecast or fill in, from the bytes of a CSV file: one numeric column whose
//! empty cells (or `NA`, `NaN`) are missing values to impute. Any other word is an error
//! naming the row and column. (Training data must be complete and are read by
//! `stipple_series::read_csv_series`, which refuses missing cells.)

use crate::PipelineError;

/// One column of a CSV file with its gaps.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesInput {
    /// The column's header name.
    pub column: String,
    /// The values by data row (`None` = missing).
    pub values: Vec<Option<f64>>,
}

/// Whether a cell marks a missing value.
fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell.eq_ignore_ascii_case("na") || cell.eq_ignore_ascii_case("nan")
}

/// Reads column `wanted` of the CSV text `bytes` (a header row, comma-separated); without
/// `wanted`, the first of `preferred` the header has, else the only column holding numbers.
/// `what` names the input in messages (its path, for a file).
pub fn read_series_column(bytes: &[u8], wanted: Option<&str>, preferred: &[String], what: &str) -> Result<SeriesInput, PipelineError> {
    let bad = |m: String| PipelineError::bad("data", format!("{what}: {m}"));
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header: Vec<String> = reader.headers().map_err(|e| bad(e.to_string()))?.iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    let numeric = |c: usize| rows.iter().all(|r| r.get(c).is_some_and(|v| is_missing(v) || v.parse::<f64>().is_ok_and(f64::is_finite)));
    let index = match wanted {
        Some(w) => header.iter().position(|h| h == w).ok_or_else(|| bad(format!("no column \"{w}\"; the header has: {}", header.join(", "))))?,
        None => match preferred.iter().find_map(|p| header.iter().position(|h| h == p)) {
            Some(i) => i,
            None => {
                let numbers: Vec<usize> = (0..header.len()).filter(|&c| numeric(c)).collect();
                match numbers.as_slice() {
                    [only] => *only,
                    [] => return Err(bad(format!("no column holds only numbers; the header has: {}", header.join(", ")))),
                    _ => {
                        let names: Vec<&str> = numbers.iter().map(|&c| header[c].as_str()).collect();
                        return Err(PipelineError::bad("column", format!("{what} has several numeric columns ({}); choose one", names.join(", "))));
                    }
                }
            }
        },
    };
    let mut values = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let cell = r.get(index).unwrap_or("");
        values.push(match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ if is_missing(cell) => None,
            _ => return Err(bad(format!("row {}, column \"{}\": not a number ({cell:?})", i + 2, header[index]))),
        });
    }
    Ok(SeriesInput { column: header[index].clone(), values })
}
