//! The embedded default training set: 1,588 Microsoft Fluent Emoji (flat, MIT) icons, 32×32,
//! compiled into the binary as one atlas PNG (see `assets/emoji/README.md`).

use image::{DynamicImage, GenericImageView, ImageFormat};

use super::labels::split_csv_line;
use super::{transform, ColorMode, DataError, ImageSet};

/// How many icons the embedded atlas holds.
pub const EMBEDDED_EMOJI_COUNT: usize = 1588;

/// The atlas: 40 columns of 32×32 RGB tiles, row-major.
const ATLAS_PNG: &[u8] = include_bytes!("../../../../assets/emoji/fluent-emoji-flat-32.png");
/// `index,name,caption,category,codepoints`, one row per tile, no quoted fields.
const LABELS_CSV: &str = include_str!("../../../../assets/emoji/labels.csv");
const TILE: u32 = 32;
const COLUMNS: u32 = 40;

/// The embedded Fluent Emoji set at `size × size` (resized from 32 px with the same transform as
/// [`super::load_folder`] when `size != 32`). Names are the icons' kebab-case names, such as
/// `"red-apple"`; replace the dashes with spaces for a caption.
pub fn embedded_emoji(size: usize, mode: ColorMode) -> Result<ImageSet, DataError> {
    if size == 0 {
        return Err(DataError::ZeroSize);
    }
    let atlas = image::load_from_memory_with_format(ATLAS_PNG, ImageFormat::Png)
        .map_err(|e| DataError::Embedded(format!("atlas PNG: {e}")))?;
    let names = embedded_names()?;
    let mut set = ImageSet::empty(size, mode.channels());
    for (i, name) in names.into_iter().enumerate() {
        let (col, row) = (i as u32 % COLUMNS, i as u32 / COLUMNS);
        let tile = DynamicImage::from(atlas.view(col * TILE, row * TILE, TILE, TILE).to_image());
        set.pixels.extend(transform::prepare(&tile, size, mode));
        set.names.push(name);
    }
    Ok(set)
}

/// The `name` column of the embedded labels, checked against [`EMBEDDED_EMOJI_COUNT`].
fn embedded_names() -> Result<Vec<String>, DataError> {
    embedded_column("name")
}

/// A column of the embedded emoji's `labels.csv` (`index`, `name`, `caption` — "red apple" —,
/// `category`, `codepoints`), one value per icon in atlas order.
pub fn embedded_column(column: &str) -> Result<Vec<String>, DataError> {
    let mut rows = LABELS_CSV.lines().filter(|l| !l.is_empty()).map(split_csv_line);
    let header = rows.next().unwrap_or_default();
    let Some(col) = header.iter().position(|h| h == column) else {
        return Err(DataError::Labels(format!("the built-in emoji have no column \"{column}\"; their columns: {}", header.join(", "))));
    };
    let values: Vec<String> = rows.map(|r| r.get(col).cloned().unwrap_or_default()).collect();
    if values.len() != EMBEDDED_EMOJI_COUNT || values.iter().any(String::is_empty) {
        return Err(DataError::Embedded(format!(
            "labels.csv has {} rows with a {column}, expected {EMBEDDED_EMOJI_COUNT}",
            values.len()
        )));
    }
    Ok(values)
}
