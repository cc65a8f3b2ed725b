//! A 3×5 pixel font for the labels of trajectory images (step numbers and σ values), so
//! labelling needs no font files or system libraries.

use image::{Rgb, RgbImage};

/// Rows of a glyph, top to bottom; bit 2 is the left column.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '=' => [0b000, 0b111, 0b000, 0b111, 0b000],
        'e' => [0b000, 0b111, 0b111, 0b100, 0b111],
        // σ: a small o with a bar to the right.
        'σ' => [0b000, 0b011, 0b110, 0b101, 0b111],
        'x' => [0b000, 0b101, 0b010, 0b101, 0b000],
        _ => [0; 5],
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 4 * scale
}

/// Height in pixels of a line at `scale`.
pub fn line_height(scale: u32) -> u32 {
    6 * scale
}

/// Draws `text` in `color` with its top-left corner at (x, y); pixels outside are clipped.
pub fn draw_text(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, color: Rgb<u8>) {
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as u32 * 4 * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3u32 {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + row as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, color);
                        }
                    }
                }
            }
        }
    }
}

/// σ in at most 5 characters: 3 significant digits, or an exponent for large values.
pub fn format_sigma(sigma: f64) -> String {
    if sigma == 0.0 {
        "0".into()
    } else if sigma >= 1000.0 {
        format!("{sigma:.0e}")
    } else if sigma >= 100.0 {
        format!("{sigma:.0}")
    } else if sigma >= 10.0 {
        format!("{sigma:.1}")
    } else {
        format!("{sigma:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_inside_the_box_only() {
        let mut img = RgbImage::from_pixel(40, 12, Rgb([255, 255, 255]));
        draw_text(&mut img, "σ1.5", 1, 1, 2, Rgb([0, 0, 0]));
        let dark = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(dark > 20);
        assert_eq!(text_width("σ1.5", 2), 32);
        for x in 33..40 {
            for y in 0..12 {
                assert_eq!(img.get_pixel(x, y).0, [255, 255, 255]);
            }
        }
        assert_eq!(format_sigma(157.4), "157");
        assert_eq!(format_sigma(0.0291), "0.03");
        assert_eq!(format_sigma(12.34), "12.3");
    }
}
