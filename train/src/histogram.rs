//! A PNG histogram of the training scores with the decision threshold marked, drawn by hand
//! (a plotting crate would cost more build time than the whole picture is worth).
//!
//! Bars are blue; the threshold is a red vertical line; the x axis spans the scores and the
//! threshold; bar heights are linear in counts, scaled to the tallest bar.

/// Image size in pixels.
pub const WIDTH: u32 = 800;
/// Image height in pixels.
pub const HEIGHT: u32 = 400;
const BINS: usize = 60;
const MARGIN: u32 = 20;

/// PNG bytes of the histogram of `scores` (anomaly scores) with `threshold` marked.
pub fn render(scores: &[f64], threshold: f64) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut pixels = vec![255u8; w * h * 3];
    let mut put = |x: usize, y: usize, rgb: [u8; 3]| {
        if x < w && y < h {
            let i = (y * w + x) * 3;
            pixels[i..i + 3].copy_from_slice(&rgb);
        }
    };
    let finite: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    let lo = finite.iter().copied().fold(threshold, f64::min);
    let hi = finite.iter().copied().fold(threshold, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (lo, span) = (lo - span * 0.02, span * 1.04);
    let mut counts = [0u64; BINS];
    for s in &finite {
        let b = (((s - lo) / span) * BINS as f64) as usize;
        counts[b.min(BINS - 1)] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1);
    let (left, right) = (MARGIN as usize, w - MARGIN as usize);
    let (top, bottom) = (MARGIN as usize, h - MARGIN as usize);
    let plot_w = right - left;
    let plot_h = bottom - top;
    for (b, &c) in counts.iter().enumerate() {
        let x0 = left + b * plot_w / BINS;
        let x1 = left + (b + 1) * plot_w / BINS;
        let bar = (c as f64 / tallest as f64 * plot_h as f64).round() as usize;
        for x in x0..x1.saturating_sub(1).max(x0 + 1) {
            for y in bottom - bar..bottom {
                put(x, y, [70, 110, 190]);
            }
        }
    }
    // Axes.
    for x in left..=right {
        put(x, bottom, [0, 0, 0]);
    }
    for y in top..=bottom {
        put(left, y, [0, 0, 0]);
    }
    // Threshold.
    let tx = left + (((threshold - lo) / span) * plot_w as f64).round() as usize;
    for y in top..=bottom {
        for dx in 0..2 {
            put(tx + dx, y, [220, 30, 30]);
        }
    }
    encode(&pixels)
}

fn encode(pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Writing to a Vec with a matching buffer size cannot fail.
        if let Ok(mut writer) = encoder.write_header() {
            let _ = writer.write_image_data(pixels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_decodable_png_with_a_red_threshold_line() {
        let scores: Vec<f64> = (0..1000).map(|i| 0.3 + (i % 100) as f64 / 500.0).collect();
        let bytes = render(&scores, 0.45);
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let red = buf
            .chunks(3)
            .filter(|p| p[0] == 220 && p[1] == 30 && p[2] == 30)
            .count();
        assert!(red >= (HEIGHT as usize - 2 * MARGIN as usize) * 2, "{red}");
        let blue = buf.chunks(3).filter(|p| p[2] == 190).count();
        assert!(blue > 1000, "{blue}");
    }
}
