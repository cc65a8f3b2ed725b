//! A TensorBoard event file: `Event` protos framed as TFRecords
//! (`tensorflow/core/lib/io/record_writer.cc`): per record a little-endian `u64` length, the
//! masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::crc32c::masked_crc32c;
use super::protobuf::{event_step, file_version_event, image_event, scalars_event, EncodedImage};

/// Prefix of the event files' names.
const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// Appends events to a new `events.out.tfevents.*` file (the name TensorBoard looks for).
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl EventWriter {
    /// Creates a fresh event file in `dir` (every session gets its own, as TensorBoard's
    /// writers do) and writes the `file_version` event.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stamp = now() as u64;
        let pid = std::process::id();
        for n in 0.. {
            let path = dir.join(format!("{EVENT_FILE_PREFIX}{stamp}.stipple.{pid}.{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut w = EventWriter { path, out: BufWriter::new(file) };
                    w.record(&file_version_event(now()))?;
                    return Ok(w);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("some file name is free")
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one step's scalars and flushes, so TensorBoard sees them at once.
    pub fn scalars(&mut self, step: usize, scalars: &[(&str, f64)]) -> std::io::Result<()> {
        self.record(&scalars_event(now(), step as i64, scalars))?;
        self.out.flush()
    }

    /// Writes one PNG image under `tag` and flushes.
    pub fn image(&mut self, step: usize, tag: &str, image: &EncodedImage<'_>) -> std::io::Result<()> {
        self.record(&image_event(now(), step as i64, tag, image))?;
        self.out.flush()
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc32c(data).to_le_bytes())
    }
}

/// Removes from every event file in `dir` the events of steps after `step` (and a record
/// cut short by an interruption), each file rewritten under a temporary name and renamed.
/// A resumed run replays the steps after its checkpoint; without this, TensorBoard would
/// show them twice.
pub fn drop_events_after(dir: &Path, step: usize) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(EVENT_FILE_PREFIX)) {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let kept = records_through(&bytes, step as i64);
        if kept.len() < bytes.len() {
            // The temporary name lacks "tfevents", so TensorBoard never reads a half-written one.
            let tmp = dir.join("rewrite.tmp");
            std::fs::write(&tmp, &kept)?;
            std::fs::rename(&tmp, &path)?;
        }
    }
    Ok(())
}

/// The framed records of `bytes` whose event's step is at most `step`, up to the first
/// record that is incomplete or unreadable.
fn records_through(bytes: &[u8], step: i64) -> Vec<u8> {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while rest.len() >= 12 {
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(16)).filter(|&e| e <= rest.len()) else {
            break;
        };
        let data = &rest[12..end - 4];
        let intact = rest[8..12] == masked_crc32c(&rest[..8]).to_le_bytes() && rest[end - 4..end] == masked_crc32c(data).to_le_bytes();
        let Some(event_step) = event_step(data).filter(|_| intact) else {
            break;
        };
        if event_step <= step {
            kept.extend_from_slice(&rest[..end]);
        }
        rest = &rest[end..];
    }
    kept
}
