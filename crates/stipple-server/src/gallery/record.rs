//! What the gallery stores about an image, and how a listing is asked for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identifier of a stored image: a positive integer, assigned in increasing order and
/// never reused for another image (SQLite `AUTOINCREMENT`), so it also orders images by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub struct ImageId(i64);

impl ImageId {
    /// The integer value.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<ImageId> for i64 {
    fn from(id: ImageId) -> i64 {
        id.0
    }
}

impl TryFrom<i64> for ImageId {
    type Error = ParseImageIdError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value >= 1 {
            Ok(ImageId(value))
        } else {
            Err(ParseImageIdError(value.to_string()))
        }
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The text was not an image id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image id {0:?}: expected a positive decimal integer without sign or leading zeros")]
pub struct ParseImageIdError(String);

impl FromStr for ImageId {
    type Err = ParseImageIdError;

    /// Accepts exactly the canonical spelling `Display` writes (no sign, no leading zero, no
    /// white space), at most `i64::MAX`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::decimal::parse_positive(s)
            .and_then(|v| i64::try_from(v).ok())
            .map(ImageId)
            .ok_or_else(|| ParseImageIdError(s.chars().take(40).collect()))
    }
}

/// The generation settings stored with an image; what the caller knows before inserting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Name of the model that made the image.
    pub model_name: String,
    /// Hash of the model file (hex SHA-256), so a renamed or retrained model is told apart.
    pub model_hash: String,
    pub prompt: String,
    pub negative_prompt: String,
    /// Sampler name, as the request spelled it after validation.
    pub sampler: String,
    pub steps: u32,
    pub seed: u64,
    /// Classifier-free guidance scale (must be finite: SQLite stores NaN as NULL).
    pub guidance: f64,
    pub width: u32,
    pub height: u32,
    /// The full recipe as JSON; the gallery stores it as opaque text.
    pub recipe_json: String,
}

/// A stored image: its settings and what the gallery knows of its PNG file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub id: ImageId,
    /// When it was inserted: milliseconds since the Unix epoch, UTC.
    pub created_ms: i64,
    #[serde(flatten)]
    pub meta: ImageMeta,
    /// Length of the PNG file in bytes.
    pub png_size: u64,
    /// SHA-256 of the PNG bytes, lower-case hex (usable as an HTTP `ETag`).
    pub png_sha256: String,
}

/// Which images `Gallery::list` returns: newest first, matching every given filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListFilter {
    /// Case-insensitive substring of the prompt (Unicode lower-casing on both sides).
    pub prompt: Option<String>,
    /// Exact model name.
    pub model: Option<String>,
    /// Page size: `DEFAULT_LIMIT` when absent, clamped to `1..=MAX_LIMIT`.
    pub limit: Option<u32>,
    /// Cursor: only images older than this id (the previous page's `next_before`).
    pub before: Option<ImageId>,
}

/// Page size of `Gallery::list` when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page `Gallery::list` returns.
pub const MAX_LIMIT: u32 = 500;

impl ListFilter {
    /// The page size this filter asks for, after the default and the bounds.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// One page of a listing. Ids only decrease along the pages, so images inserted while a
/// client pages never shift the pages it has not read yet (they appear on a new first page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub records: Vec<Record>,
    /// The cursor for the next page, `None` on the last page.
    pub next_before: Option<ImageId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_in_canonical_form() {
        assert_eq!("1".parse::<ImageId>().unwrap().get(), 1);
        assert_eq!("9223372036854775807".parse::<ImageId>().unwrap().get(), i64::MAX);
        for bad in ["0", "007", "-1", "1.png", "9223372036854775808"] {
            assert!(bad.parse::<ImageId>().is_err(), "{bad:?} was accepted");
        }
        let id: ImageId = "42".parse().unwrap();
        assert_eq!(id.to_string().parse::<ImageId>().unwrap(), id);
    }

    #[test]
    fn ids_deserialize_only_positive() {
        assert_eq!(serde_json::from_str::<ImageId>("5").unwrap().get(), 5);
        assert!(serde_json::from_str::<ImageId>("0").is_err());
        assert!(serde_json::from_str::<ImageId>("-3").is_err());
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        let with = |limit| ListFilter { limit, ..ListFilter::default() }.page_size();
        assert_eq!(with(None), DEFAULT_LIMIT);
        assert_eq!(with(Some(0)), 1);
        assert_eq!(with(Some(7)), 7);
        assert_eq!(with(Some(100_000)), MAX_LIMIT);
    }
}
