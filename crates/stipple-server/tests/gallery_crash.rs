//! Crash consistency of the gallery under `kill -9`.
//!
//! This test binary runs twice over: as the test, and, re-executed with `CHILD_ENV` set, as
//! a child that inserts and deletes images in a tight loop. Each round the test starts the
//! child, lets it work for a random moment, kills it with SIGKILL, reopens the gallery
//! (which reconciles) and checks the invariant of `stipple_server::gallery`: every row has
//! its file holding exactly the bytes inserted, every image file has its row, and no
//! temporary file is left. (SIGKILL leaves the kernel's page cache intact, so this checks
//! process crashes; the fsyncs that cover power cuts are argued in the module's docs.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use stipple_server::gallery::{Gallery, ImageMeta, ListFilter, IMAGES_DIR, MAX_LIMIT};

/// Set to the data folder in the child process.
const CHILD_ENV: &str = "STIPPLE_GALLERY_CRASH_CHILD";
const ROUNDS: usize = 20;
/// The child is killed this long (uniformly drawn, in ms) after it has opened the gallery.
const MAX_DELAY_MS: u64 = 60;

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => churn(Path::new(&dir)),
        None => kill_and_check(),
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014), a small seeded generator for the test's choices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn clock_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 ^ u64::from(std::process::id())
}

/// The bytes inserted for an image with this seed: a PNG signature, then up to 40 KB drawn
/// from the seed, so the check can recompute them without trusting the gallery's hash.
fn payload(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let len = 1 + (rng.next() % 40_000) as usize;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len).map(|_| rng.next() as u8));
    bytes
}

fn meta(seed: u64) -> ImageMeta {
    ImageMeta {
        model_name: "crash".into(),
        model_hash: "0".repeat(64),
        prompt: format!("image {seed}"),
        negative_prompt: String::new(),
        sampler: "euler".into(),
        steps: 1,
        seed,
        guidance: 1.0,
        width: 8,
        height: 8,
        recipe_json: "{}".into(),
    }
}

/// The child: insert three images for every delete, until killed.
fn churn(dir: &Path) -> ! {
    let (gallery, _) = Gallery::open(dir).expect("child: open the gallery");
    println!("ready");
    let mut rng = SplitMix(clock_seed());
    loop {
        if rng.next().is_multiple_of(4) {
            let newest = gallery.list(&ListFilter { limit: Some(20), ..ListFilter::default() }).expect("child: list");
            if !newest.records.is_empty() {
                let victim = newest.records[(rng.next() % newest.records.len() as u64) as usize].id;
                gallery.delete(victim).expect("child: delete");
            }
        } else {
            let seed = rng.next();
            gallery.insert(&meta(seed), &payload(seed)).expect("child: insert");
        }
    }
}

fn kill_and_check() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let seed = clock_seed();
    println!("gallery_crash: {ROUNDS} rounds, delays drawn with seed {seed}");
    let mut rng = SplitMix(seed);
    let exe = std::env::current_exe().unwrap();
    let (mut repairs, mut most_rows) = (0, 0);
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe).env(CHILD_ENV, dir.path()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "round {round}: the child did not start");
        std::thread::sleep(Duration::from_millis(rng.next() % (MAX_DELAY_MS + 1)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child exited by itself ({status})");

        let (gallery, report) = Gallery::open(dir.path()).unwrap();
        assert!(report.unknown_entries.is_empty(), "round {round}: {report:?}");
        repairs += report.removed_orphan_files.len() + report.removed_temp_files.len();
        assert!(report.removed_rows.is_empty(), "round {round}: a row lost its file: {report:?}");
        most_rows = most_rows.max(check_invariant(&gallery, dir.path(), round));
    }
    assert!(most_rows > 0, "the child never inserted an image before it was killed");
    println!(
        "gallery_crash: {ROUNDS} rounds passed, {repairs} leftover files repaired, up to {most_rows} images, in {:.1?}",
        started.elapsed()
    );
}

/// Checks rows against files; returns the number of rows.
fn check_invariant(gallery: &Gallery, dir: &Path, round: usize) -> usize {
    let mut rows = BTreeSet::new();
    let mut filter = ListFilter { limit: Some(MAX_LIMIT), ..ListFilter::default() };
    loop {
        let page = gallery.list(&filter).unwrap();
        for record in &page.records {
            let bytes = gallery.read_png(record.id).unwrap_or_else(|e| panic!("round {round}: image {}: {e}", record.id));
            assert!(bytes == payload(record.meta.seed), "round {round}: image {} holds other bytes than inserted", record.id);
            let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, record.png_sha256, "round {round}: image {}", record.id);
            rows.insert(format!("{}.png", record.id));
        }
        match page.next_before {
            Some(before) => filter.before = Some(before),
            None => break,
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(dir.join(IMAGES_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, rows, "round {round}: the image files and the rows differ");
    assert_eq!(gallery.count().unwrap() as usize, rows.len());
    rows.len()
}
