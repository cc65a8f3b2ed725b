//! A TensorBoard event file: `Event` protos framed as TFRecords
//! (`tensorflow/core/lib/io/record_writer.cc`): per record a little-endian `u64` length, the
//! masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::crc32c::masked_crc32c;
use super::protobuf::{file_version_event, image_event, scalars_event, EncodedImage};

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
            let path = dir.join(format!("events.out.tfevents.{stamp}.stipple.{pid}.{n}"));
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
