//! Writes the built-in emoji training set, as `stipple train` sees it at a given size, to a
//! folder of PNGs (`NAME.png`), so another tool trains on the same pixels
//! (bench/recipe/compare.sh).
//!
//! `cargo run -p stipple-train --example export_emoji -- OUT_DIR [SIZE=16]`

use stipple_train::data::{embedded_emoji, ColorMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().ok_or("usage: export_emoji OUT_DIR [SIZE]")?);
    let size: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    let set = embedded_emoji(size, ColorMode::Rgb)?;
    std::fs::create_dir_all(&out)?;
    let per = 3 * size * size;
    for (name, chw) in set.names.iter().zip(set.pixels.chunks_exact(per)) {
        // [-1, 1] planar → 8-bit RGB, rounded.
        let img = image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
            let at = |c: usize| ((chw[c * size * size + y as usize * size + x as usize] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
            image::Rgb([at(0), at(1), at(2)])
        });
        img.save(out.join(format!("{name}.png")))?;
    }
    println!("wrote {} images of {size}×{size} to {}", set.names.len(), out.display());
    Ok(())
}
