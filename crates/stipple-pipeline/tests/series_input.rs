//! Reading the series to forecast: the column chosen, empty cells as missing values, and
//! words refused with their row and column.

use stipple_pipeline::{read_series_column, PipelineError};

const CSV: &[u8] = b"day,sales,visits\nmon,1.5,10\ntue,,11\nwed,NA,12\nthu,2.5,13\n";

#[test]
fn missing_cells_are_none_and_the_column_is_chosen() {
    let s = read_series_column(CSV, Some("sales"), &[], "t.csv").unwrap();
    assert_eq!(s.column, "sales");
    assert_eq!(s.values, vec![Some(1.5), None, None, Some(2.5)]);
    // Without a name: the model's own column first.
    let s = read_series_column(CSV, None, &["visits".to_string()], "t.csv").unwrap();
    assert_eq!((s.column.as_str(), s.values[3]), ("visits", Some(13.0)));
    // Without either, several numeric columns are ambiguous, one is not.
    let err = read_series_column(CSV, None, &[], "t.csv").unwrap_err();
    assert!(matches!(err, PipelineError::BadInput { setting: "column", .. }), "{err}");
    assert!(err.to_string().contains("sales, visits"), "{err}");
    let s = read_series_column(b"day,y\nmon,1\ntue,\n", None, &[], "t.csv").unwrap();
    assert_eq!(s.values, vec![Some(1.0), None]);
}

#[test]
fn words_and_unknown_columns_are_bad_data() {
    let err = read_series_column(b"y\n1\nlots\n3\n", Some("y"), &[], "t.csv").unwrap_err();
    assert!(err.to_string().contains("row 3") && err.to_string().contains("not a number"), "{err}");
    let err = read_series_column(CSV, Some("price"), &[], "t.csv").unwrap_err();
    assert!(matches!(err, PipelineError::BadInput { setting: "data", .. }), "{err}");
    assert!(err.to_string().contains("no column \"price\"") && err.to_string().contains("day, sales, visits"), "{err}");
}
