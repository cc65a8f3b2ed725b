//! Series from a CSV table: named numeric columns, every cell checked, so a missing value or a
//! stray word is reported by row and column instead of becoming a NaN inside a model. Columns
//! may end at different rows (the "wide" layout of many series of different lengths, as in the
//! M4 competition's files): the empty cells after a column's last value are not part of it.

use std::path::Path;

use crate::SeriesError;

/// Columns of a CSV file, by header name, as `f64` series (each as long as its column runs).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTable {
    pub names: Vec<String>,
    /// `columns[c][t]`: column c at row t (header excluded).
    pub columns: Vec<Vec<f64>>,
}

/// Reads the columns `wanted` (all columns whose every cell is a number when empty) of the
/// CSV file `path` (a header row, comma-separated). A column runs from the first data row to
/// its last non-empty cell, and every cell in that run must parse as a finite number: an
/// empty cell before the column's last value, "NA" or any word is an error naming the file,
/// the row (1-based, counting the header) and the column; so is a column with no value.
pub fn read_csv_series(path: &Path, wanted: &[String]) -> Result<SeriesTable, SeriesError> {
    let io = |e: &dyn std::fmt::Display| SeriesError::Table { path: path.to_path_buf(), reason: e.to_string() };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| io(&e))?;
    let header: Vec<String> = reader.headers().map_err(|e| io(&e))?.iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().map_err(|e| io(&e))?;
    // The rows of column c: up to its last non-empty cell.
    let run = |c: usize| rows.iter().rposition(|r| r.get(c).is_some_and(|v| !v.is_empty())).map_or(0, |last| last + 1);
    let numeric = |c: usize| {
        let n = run(c);
        n > 0 && rows[..n].iter().all(|r| r.get(c).is_some_and(|v| v.parse::<f64>().is_ok_and(f64::is_finite)))
    };
    let picked: Vec<usize> = if wanted.is_empty() {
        (0..header.len()).filter(|&c| numeric(c)).collect()
    } else {
        wanted
            .iter()
            .map(|w| {
                header.iter().position(|h| h == w).ok_or_else(|| {
                    io(&format!("no column \"{w}\"; the header has: {}", header.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?
    };
    if picked.is_empty() {
        return Err(io(&format!("no column holds only numbers; the header has: {}", header.join(", "))));
    }
    let mut columns = Vec::with_capacity(picked.len());
    for &c in &picked {
        let n = run(c);
        if n == 0 {
            return Err(io(&format!("column \"{}\" has no value", header[c])));
        }
        let mut values = Vec::with_capacity(n);
        for (i, r) in rows[..n].iter().enumerate() {
            let cell = r.get(c).unwrap_or("");
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    let what = if cell.is_empty() || cell.eq_ignore_ascii_case("na") || cell.eq_ignore_ascii_case("nan") { "a missing value" } else { "not a number" };
                    return Err(io(&format!("row {}, column \"{}\": {what} ({cell:?}); fill or drop missing values first", i + 2, header[c])));
                }
            }
        }
        columns.push(values);
    }
    Ok(SeriesTable { names: picked.iter().map(|&c| header[c].clone()).collect(), columns })
}
