//! Class labels of a folder data set (images, or the WAV clips of a sound run): a column of
//! `labels.csv` in the folder (first column = file name relative to the folder), or the name
//! of each file's sub-folder.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DataError;

/// Name of the label table looked for in the data folder.
pub const LABELS_FILE: &str = "labels.csv";

/// Where the class label of each file (image or clip) comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LabelSource {
    /// No labels: an unconditional model.
    #[default]
    None,
    /// The column `column` of `labels.csv` in the data folder.
    Csv { column: String },
    /// The first sub-folder of each file's path (`cats/01.png` → `cats`, `yes/alice.wav` → `yes`).
    Folders,
}

/// The sorted class names and, per file (in `names` order), its class index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    pub classes: Vec<String>,
    pub per_image: Vec<u32>,
}

/// Labels of the files `names` (images or clips; paths relative to `dir`, `/`-separated) from
/// `source` (`None` for [`LabelSource::None`]). Every file must have a non-empty label.
pub fn load_labels(dir: &Path, names: &[String], source: &LabelSource) -> Result<Option<Labels>, DataError> {
    let bad = |m: String| Err(DataError::Labels(m));
    let raw: Vec<String> = match source {
        LabelSource::None => return Ok(None),
        LabelSource::Folders => {
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                match n.split_once('/') {
                    Some((folder, _)) => out.push(folder.to_string()),
                    None => return bad(format!("{n} is not in a sub-folder; --labels folders takes each file's sub-folder name as its class")),
                }
            }
            out
        }
        LabelSource::Csv { column } => csv_column(dir, names, column)?,
    };
    let classes: Vec<String> = raw.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let per_image = raw.iter().map(|r| classes.binary_search(r).expect("collected above") as u32).collect();
    Ok(Some(Labels { classes, per_image }))
}

/// The `column` of `dir/labels.csv` for each of `names` (matched on the first column, the file
/// name); every file must have a non-empty value.
pub fn csv_column(dir: &Path, names: &[String], column: &str) -> Result<Vec<String>, DataError> {
    let bad = |m: String| Err(DataError::Labels(m));
    let path = dir.join(LABELS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::Labels(format!("cannot read {}: {e}", path.display())))?;
    let mut rows = text.lines().filter(|l| !l.trim().is_empty()).map(split_csv_line);
    let header = rows.next().ok_or_else(|| DataError::Labels(format!("{} is empty", path.display())))?;
    let Some(col) = header.iter().position(|h| h.trim() == column) else {
        return bad(format!("{} has no column \"{column}\"; its columns: {}", path.display(), header.join(", ")));
    };
    let mut table = HashMap::new();
    for row in rows {
        if let (Some(file), Some(value)) = (row.first(), row.get(col)) {
            table.insert(file.trim().to_string(), value.trim().to_string());
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        match table.get(n) {
            Some(v) if !v.is_empty() => out.push(v.clone()),
            _ => return bad(format!("{n} has no \"{column}\" value in {}", path.display())),
        }
    }
    Ok(out)
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"` and `""` inside quotes).
pub(crate) fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("non-empty").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv_line(r#"a.png,"red, ripe ""apple""",Food"#), vec!["a.png", r#"red, ripe "apple""#, "Food"]);
    }

    #[test]
    fn labels_from_csv_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LABELS_FILE), "file,caption,category\nb.png,bee,Animals\na.png,apple,Food\n").unwrap();
        let names = vec!["a.png".to_string(), "b.png".to_string()];
        let l = load_labels(dir.path(), &names, &LabelSource::Csv { column: "category".into() }).unwrap().unwrap();
        assert_eq!(l.classes, vec!["Animals", "Food"]);
        assert_eq!(l.per_image, vec![1, 0]);
        let err = load_labels(dir.path(), &names, &LabelSource::Csv { column: "label".into() }).unwrap_err().to_string();
        assert!(err.contains("category"), "{err}");
        let missing = vec!["c.png".to_string()];
        assert!(load_labels(dir.path(), &missing, &LabelSource::Csv { column: "category".into() }).is_err());
        let nested = vec!["cats/1.png".to_string(), "dogs/2.png".to_string(), "cats/3.png".to_string()];
        let l = load_labels(dir.path(), &nested, &LabelSource::Folders).unwrap().unwrap();
        assert_eq!((l.classes, l.per_image), (vec!["cats".to_string(), "dogs".to_string()], vec![0, 1, 0]));
        assert!(load_labels(dir.path(), &names, &LabelSource::Folders).is_err());
    }
}
