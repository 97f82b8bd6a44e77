//! Inline SVG charts for the report: bars with labels, lines with point markers, a value axis
//! with gridlines and units. Plain strings, no script: the page must open anywhere, offline.

use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 220.0;
/// Left margin: room for the value axis labels.
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
/// Bottom margin: room for two rows of category labels.
const BOTTOM: f64 = 40.0;
const PLOT_W: f64 = W - LEFT - RIGHT;
const PLOT_H: f64 = H - TOP - BOTTOM;
/// Lines with at most this many points get a dot on each, so one batch still shows.
const MARKERS_UP_TO: usize = 60;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A value as people read it on an axis: thousands separated, decimals only for small values.
pub fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if v.abs() >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The top of the value axis: the largest value (or 1 when all are zero or empty).
fn top(values: &[f64]) -> f64 {
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    if max > 0.0 { max } else { 1.0 }
}

fn y_of(v: f64, top: f64) -> f64 {
    TOP + PLOT_H * (1.0 - (v / top).clamp(0.0, 1.0))
}

/// The frame: background, gridlines at 0, about ½ and the top with their values and unit.
/// With whole-number `values` (counts, versions) the middle line sits on a whole number too.
fn frame(top: f64, unit: &str, values: &[f64]) -> String {
    let whole = values.iter().all(|v| v.fract() == 0.0);
    let middle = if !whole {
        Some(top / 2.0)
    } else if top >= 2.0 {
        Some((top / 2.0).floor())
    } else {
        None
    };
    let mut svg = format!("<svg viewBox=\"0 0 {W} {H}\" role=\"img\">");
    for (v, stroke) in [(Some(0.0), "#888"), (middle, "#ddd"), (Some(top), "#ddd")] {
        let Some(v) = v else { continue };
        let y = y_of(v, top);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">{}{}</text>",
            number(v),
            escape(unit),
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 3.5,
        );
    }
    svg
}

/// Which labels to show under the axis so none overlaps its neighbours.
#[derive(Debug, PartialEq)]
enum Labels {
    /// Every label, on one row.
    All,
    /// Every label, alternating between two rows (a few long category names).
    Staggered,
    /// Every n-th label, on one row (many time buckets).
    Every(usize),
}

fn label_layout(labels: &[String]) -> Labels {
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    // About 6 px per character at 10 px, plus a gap.
    let fits = (PLOT_W / (widest * 6.0 + 8.0)).floor().max(1.0) as usize;
    if labels.len() <= fits {
        Labels::All
    } else if labels.len() <= 2 * fits {
        Labels::Staggered
    } else {
        Labels::Every(labels.len().div_ceil(fits))
    }
}

/// Vertical bars with labels under them (thinned so they never overlap). `mark`: a position in
/// bar units and its caption, drawn as a dashed red rule (the threshold on the histogram).
pub fn bars(
    labels: &[String],
    values: &[f64],
    color: &str,
    unit: &str,
    mark: Option<(f64, String)>,
) -> String {
    let top = top(values);
    let step = PLOT_W / values.len().max(1) as f64;
    let layout = label_layout(labels);
    let mut svg = frame(top, unit, values);
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let x = LEFT + i as f64 * step;
        let y = y_of(*v, top);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
             <title>{}: {}{}</title></rect>",
            x + step * 0.1,
            step * 0.8,
            TOP + PLOT_H - y,
            escape(label),
            number(*v),
            escape(unit),
        );
        let row = match layout {
            Labels::All => Some(0.0),
            Labels::Staggered => Some((i % 2) as f64),
            Labels::Every(n) => (i % n == 0).then_some(0.0),
        };
        if let Some(row) = row {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                x + step / 2.0,
                H - BOTTOM + 14.0 + 13.0 * row,
                escape(label)
            );
        }
    }
    if let Some((position, caption)) = mark {
        let x = LEFT + position * step;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-width=\"2\" stroke-dasharray=\"4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#c0392b\">{}</text>",
            TOP + PLOT_H,
            x + 4.0,
            TOP + 10.0,
            escape(&caption)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A line over `values` in order (x: their index, labelled first and last as `1` and `n`).
/// `steps`: draw it as a staircase, for values that hold until they change (model versions).
pub fn line(values: &[f64], color: &str, unit: &str, steps: bool) -> String {
    let top = top(values);
    let n = values.len();
    let x_of = |i: usize| {
        if n <= 1 {
            LEFT + PLOT_W / 2.0
        } else {
            LEFT + PLOT_W * i as f64 / (n - 1) as f64
        }
    };
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(2 * n);
    for (i, v) in values.iter().enumerate() {
        let (x, y) = (x_of(i), y_of(*v, top));
        if steps && let Some(&(_, previous)) = points.last() {
            points.push((x, previous));
        }
        points.push((x, y));
    }
    let mut svg = frame(top, unit, values);
    let polyline: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
        polyline.join(" ")
    );
    if n <= MARKERS_UP_TO {
        for (i, v) in values.iter().enumerate() {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>#{}: {}{}</title></circle>",
                x_of(i),
                y_of(*v, top),
                i + 1,
                number(*v),
                escape(unit)
            );
        }
    }
    if n > 0 {
        let ends = if n == 1 { vec![0] } else { vec![0, n - 1] };
        for i in ends {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                x_of(i),
                H - BOTTOM + 14.0,
                i + 1
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails by panicking

    use super::*;

    #[test]
    fn numbers_read_like_axis_labels() {
        assert_eq!(number(53841.0), "53,841");
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(-2500.0), "-2,500");
        assert_eq!(number(42.4), "42");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.25), "2.2");
        assert_eq!(number(0.375), "0.38");
    }

    #[test]
    fn labels_never_overlap_and_few_categories_all_show() {
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(label_layout(&three), Labels::All);
        // Five long expectation names: all shown, on two rows.
        let names: Vec<String> = [
            "has_event_time",
            "has_features",
            "has_transaction_id",
            "non_negative_amount",
            "valid_types",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(label_layout(&names), Labels::Staggered);
        // Two days of hours: thinned, and the shown ones fit side by side.
        let hours: Vec<String> = (0..48)
            .map(|h| format!("0{} {:02}h", 1 + h / 24, h % 24))
            .collect();
        let Labels::Every(n) = label_layout(&hours) else {
            panic!("48 hour labels are thinned")
        };
        assert!(hours.len().div_ceil(n) as f64 * (6.0 * 6.0 + 8.0) <= PLOT_W);
        let svg = bars(&hours, &[1.0; 48], "#c0392b", "", None);
        let shown = svg.matches("text-anchor=\"middle\"").count();
        assert_eq!(shown, hours.len().div_ceil(n));
    }

    #[test]
    fn a_single_point_is_still_drawn() {
        let svg = line(&[2219.0], "#16a085", " ms", false);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("2,219 ms"), "{svg}");
    }

    #[test]
    fn steps_hold_a_value_until_it_changes() {
        let svg = line(&[0.0, 1.0], "#d35400", "", true);
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        // start, the step's corner at the old height, the new value.
        assert_eq!(points.split(' ').count(), 3, "{points}");
    }

    #[test]
    fn whole_numbers_get_whole_gridlines() {
        let versions = line(&[0.0, 1.0], "#d35400", "", true);
        assert!(!versions.contains(">0.50<"), "{versions}");
        let counts = bars(&["a".into(), "b".into()], &[77.0, 3.0], "#c0392b", "", None);
        assert!(
            counts.contains(">38<") && counts.contains(">77<"),
            "{counts}"
        );
    }

    #[test]
    fn small_values_keep_their_decimals_on_the_axis() {
        let svg = bars(&["a".into()], &[0.4], "#e67e22", "%", None);
        assert!(svg.contains(">0.40%<"), "{svg}");
    }
}
