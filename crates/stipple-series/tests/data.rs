//! Series from CSV files and their windows, with the bad input a user meets: missing values,
//! words in number columns, unknown columns, too few rows for one window.

use stipple_series::{read_csv_series, windows};

fn csv(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("series.csv");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn numeric_columns_by_name_or_all() {
    let (_d, path) = csv("date,co2, sales\n1958-03-29,316.1,5\n1958-04-05,317.3,7\n1958-04-12,317.6,6\n");
    let all = read_csv_series(&path, &[]).unwrap();
    assert_eq!(all.names, ["co2", "sales"], "the date column is not numeric");
    assert_eq!(all.columns, [vec![316.1, 317.3, 317.6], vec![5.0, 7.0, 6.0]]);
    let one = read_csv_series(&path, &["sales".into()]).unwrap();
    assert_eq!(one.columns, [vec![5.0, 7.0, 6.0]]);
}

#[test]
fn bad_cells_and_columns_are_named() {
    let (_d, path) = csv("t,y\n1,2.5\n2,\n3,4\n");
    let e = read_csv_series(&path, &["y".into()]).unwrap_err().to_string();
    assert!(e.contains("row 3, column \"y\": a missing value"), "{e}");
    let (_d, path) = csv("t,y\n1,2.5\n2,abc\n");
    let e = read_csv_series(&path, &["y".into()]).unwrap_err().to_string();
    assert!(e.contains("row 3, column \"y\": not a number (\"abc\")"), "{e}");
    let e = read_csv_series(&path, &["z".into()]).unwrap_err().to_string();
    assert!(e.contains("no column \"z\"; the header has: t, y"), "{e}");
    let (_d, path) = csv("a,b\nx,y\n");
    assert!(read_csv_series(&path, &[]).unwrap_err().to_string().contains("no column holds only numbers"));
    let (_d, path) = csv("a,b\n1,2,3\n");
    assert!(read_csv_series(&path, &[]).is_err(), "a ragged row");
}

#[test]
fn columns_may_end_at_different_rows() {
    // The wide layout of many series: a shorter column ends in empty cells.
    let (_d, path) = csv("a,b,c\n1,10,\n2,20,\n3,,\n");
    let t = read_csv_series(&path, &[]).unwrap();
    assert_eq!(t.names, ["a", "b"], "a column with no value is not numeric");
    assert_eq!(t.columns, [vec![1.0, 2.0, 3.0], vec![10.0, 20.0]]);
    let e = read_csv_series(&path, &["c".into()]).unwrap_err().to_string();
    assert!(e.contains("column \"c\" has no value"), "{e}");
    // A gap before a later value is still a missing value, not the column's end.
    let (_d, path) = csv("a,b\n1,10\n2,\n3,30\n");
    let e = read_csv_series(&path, &["b".into()]).unwrap_err().to_string();
    assert!(e.contains("row 3, column \"b\": a missing value"), "{e}");
    assert_eq!(read_csv_series(&path, &[]).unwrap().names, ["a"]);
}

#[test]
fn windows_are_scaled_by_their_context_only() {
    let series: Vec<f64> = (0..10).map(|t| (t * t) as f64).collect();
    let ws = windows(&series, 3, 2, 2).unwrap();
    assert_eq!(ws.len(), 3, "starts 0, 2, 4 (a window of 5 ending at 9)");
    let w = &ws[1]; // 4, 9, 16 | 25, 36
    let mean = (4.0 + 9.0 + 16.0) / 3.0;
    let sd = (((4.0f64 - mean).powi(2) + (9.0f64 - mean).powi(2) + (16.0f64 - mean).powi(2)) / 3.0).sqrt();
    assert!((w.mean - mean).abs() < 1e-12 && (w.scale - sd).abs() < 1e-12);
    let back = w.unscale(&w.values);
    for (a, b) in back.iter().zip([4.0, 9.0, 16.0, 25.0, 36.0]) {
        assert!((a - b).abs() < 1e-9);
    }
    let e = windows(&series, 8, 4, 1).unwrap_err().to_string();
    assert!(e.contains("one window (context + horizon) needs at least 12 values, got 10"), "{e}");
    assert_eq!(windows(&[5.0; 4], 2, 1, 1).unwrap()[0].scale, 1.0, "a constant context is only shifted");
}
