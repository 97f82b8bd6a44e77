//! Headless Chromium for the report test: renders a page to a PNG and decodes it, so a test
//! can check what a person would see.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, eventually};

/// The Chromium executable: `$ISOLAKE_CHROMIUM`, else `chromium` (Debian's package, which
/// `.ci/run` installs) or `chromium-browser` / `google-chrome` on the PATH. Fails (never skips)
/// when there is none, saying how to get one.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("ISOLAKE_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the report test renders the page with headless Chromium and none is installed: \
         run `.ci/run` (it installs Debian's `chromium`), `apt-get install chromium`, or set \
         ISOLAKE_CHROMIUM"
    );
}

/// A decoded screenshot: 8-bit RGBA rows.
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Screenshot {
    /// How many pixels have exactly this colour (`0xRRGGBB`).
    pub fn pixels_of(&self, rgb: u32) -> usize {
        let [_, r, g, b] = rgb.to_be_bytes();
        self.rgba
            .chunks_exact(4)
            .filter(|p| p[0] == r && p[1] == g && p[2] == b)
            .count()
    }

    /// The share of pixels that are not (near) white.
    pub fn inked(&self) -> f64 {
        let inked = self
            .rgba
            .chunks_exact(4)
            .filter(|p| p[0] < 240 || p[1] < 240 || p[2] < 240)
            .count();
        inked as f64 / (self.width as f64 * self.height as f64).max(1.0)
    }
}

/// Renders `html` (a local file) in a `width`×`height` window with headless Chromium (flags
/// `--headless --no-sandbox --disable-gpu`) and returns the decoded screenshot, also kept at
/// `png`. Panics with Chromium's output when it fails or takes over a minute.
pub fn screenshot(html: &Path, png: &Path, width: u32, height: u32) -> Screenshot {
    let profile = tempfile::tempdir().expect("a temporary Chromium profile");
    let url = format!(
        "file://{}",
        html.canonicalize().expect("the page exists").display()
    );
    let mut child = ChildGuard::spawn(
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // On a timeout the guard kills chromium as the panic unwinds.
    let what = format!("chromium to render {}", html.display());
    eventually(Duration::from_secs(60), &what, || {
        child.try_wait().expect("chromium can be waited on")
    });
    let output = child.wait_with_output().expect("chromium's output");
    assert!(
        output.status.success() && png.exists(),
        "chromium did not render {}: {}\n{}",
        html.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::File::open(png).expect("the screenshot opens");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("the screenshot is a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let frame = reader.next_frame(&mut buffer).expect("the PNG decodes");
    buffer.truncate(frame.buffer_size());
    let rgba = match frame.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    Screenshot {
        width: frame.width,
        height: frame.height,
        rgba,
    }
}
