//! Text inside a WAV file: a RIFF `LIST` chunk of type `INFO` holding an `ICMT` (comment)
//! sub-chunk (Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0",
//! 1991, §3 "RIFF INFO"), which WAV readers skip and metadata tools show. `hound` writes only
//! the format and data chunks, so the chunk is appended here and the RIFF size updated.

/// The INFO sub-chunk that carries the text.
pub const INFO_COMMENT: &[u8; 4] = b"ICMT";

/// Appends `LIST`/`INFO`/`ICMT` with `text` (NUL-terminated, padded to an even length as
/// RIFF requires) to a whole RIFF file and fixes the RIFF size in bytes 4..8.
pub(crate) fn append_info(mut riff: Vec<u8>, text: &str) -> Vec<u8> {
    let mut body = text.as_bytes().to_vec();
    body.push(0);
    if body.len() % 2 == 1 {
        body.push(0);
    }
    let mut list = b"INFO".to_vec();
    list.extend_from_slice(INFO_COMMENT);
    list.extend_from_slice(&(body.len() as u32).to_le_bytes());
    list.extend_from_slice(&body);
    riff.extend_from_slice(b"LIST");
    riff.extend_from_slice(&(list.len() as u32).to_le_bytes());
    riff.extend_from_slice(&list);
    let riff_size = (riff.len() - 8) as u32;
    riff[4..8].copy_from_slice(&riff_size.to_le_bytes());
    riff
}

/// The `ICMT` text of a WAV file's `LIST`/`INFO` chunk, if it has one; a file cut short ends
/// the walk over its chunks without a text.
pub fn read_info(riff: &[u8]) -> Option<String> {
    if riff.len() < 12 || &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return None;
    }
    chunks(&riff[12..])
        .filter(|(id, body)| *id == b"LIST" && body.starts_with(b"INFO"))
        .find_map(|(_, list)| chunks(&list[4..]).find(|(id, _)| *id == INFO_COMMENT))
        .map(|(_, text)| String::from_utf8_lossy(text).trim_end_matches('\0').to_string())
}

/// The `(id, body)` chunks laid end to end in `data` (each an id, a little-endian size, the
/// body and a pad byte when the size is odd), up to the first one cut short.
fn chunks(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(pos..pos.checked_add(8)?)?;
        let size = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        let body = data.get(pos + 8..(pos + 8).checked_add(size)?)?;
        pos = pos + 8 + size + size % 2;
        Some((&header[0..4], body))
    })
}
