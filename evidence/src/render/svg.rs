//! The few SVG primitives the HTML report draws with: a plot area with linear or log scales,
//! axes with ticks and labels, polylines, bands, reference lines and legends. Every number is
//! written with one decimal, so the same record gives the same bytes.

use std::fmt::Write;

/// One axis's range, linear or logarithmic (base 10).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl Scale {
    pub fn linear(min: f64, max: f64) -> Self {
        let max = if max > min { max } else { min + 1.0 };
        Scale {
            min,
            max,
            log: false,
        }
    }

    pub fn log(min: f64, max: f64) -> Self {
        Scale {
            min,
            max: max.max(min * 10.0),
            log: true,
        }
    }

    /// Where `v` falls in the range, 0 at `min` and 1 at `max`, clamped to [0, 1].
    fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.min).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        };
        if f.is_nan() {
            0.0
        } else {
            f.clamp(0.0, 1.0)
        }
    }

    /// About `n` round ticks within the range (powers of ten on a log scale).
    pub fn ticks(&self, n: usize) -> Vec<f64> {
        if self.log {
            let lo = self.min.log10().ceil() as i32;
            let hi = self.max.log10().floor() as i32;
            let step = ((hi - lo) as usize / n.max(1)).max(1);
            return (lo..=hi).step_by(step).map(|p| 10f64.powi(p)).collect();
        }
        let raw = (self.max - self.min) / n.max(1) as f64;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let first = (self.min / step).ceil() as i64;
        let last = (self.max / step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

/// A plot area inside an SVG: its box in pixels and the scales of its axes.
pub(crate) struct Plot {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub x: Scale,
    pub y: Scale,
}

/// A number for an SVG attribute: one decimal.
pub(crate) fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// Text for SVG and HTML.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short label for a tick: `0.5`, `2`, `1e-3`.
pub(crate) fn tick_label(v: f64, log: bool) -> String {
    if log {
        let p = v.log10().round() as i32;
        return match p {
            0 => "1".to_string(),
            1 => "10".to_string(),
            2 => "100".to_string(),
            3 => "1000".to_string(),
            -1 => "0.1".to_string(),
            -2 => "0.01".to_string(),
            _ => format!("1e{p}"),
        };
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

impl Plot {
    pub fn px(&self, v: f64) -> f64 {
        self.left + self.x.frac(v) * self.width
    }

    pub fn py(&self, v: f64) -> f64 {
        self.top + self.height - self.y.frac(v) * self.height
    }

    /// Grid, ticks, tick labels and axis titles. `xfmt`/`yfmt` label the ticks.
    pub fn axes(
        &self,
        out: &mut String,
        xlabel: &str,
        ylabel: &str,
        xfmt: &dyn Fn(f64) -> String,
        yfmt: &dyn Fn(f64) -> String,
    ) {
        let (l, t, w, h) = (self.left, self.top, self.width, self.height);
        let _ = write!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="#bbb"/>"##,
            n(l),
            n(t),
            n(w),
            n(h)
        );
        for v in self.y.ticks(5) {
            let y = self.py(v);
            let _ = write!(
                out,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e3e3e3"/><text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"##,
                n(l),
                n(y),
                n(l + w),
                n(y),
                n(l - 4.0),
                n(y + 4.0),
                esc(&yfmt(v))
            );
        }
        for v in self.x.ticks(8) {
            let x = self.px(v);
            let _ = write!(
                out,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e3e3e3"/><text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>"##,
                n(x),
                n(t),
                n(x),
                n(t + h),
                n(x),
                n(t + h + 14.0),
                esc(&xfmt(v))
            );
        }
        if !xlabel.is_empty() {
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
                n(l + w / 2.0),
                n(t + h + 30.0),
                esc(xlabel)
            );
        }
        if !ylabel.is_empty() {
            let (x, y) = (l - 44.0, t + h / 2.0);
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" class="axis" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
                n(x),
                n(y),
                n(x),
                n(y),
                esc(ylabel)
            );
        }
    }

    /// A line through the points (in data units); `dash` like `"6 3"`.
    pub fn line(&self, out: &mut String, pts: &[(f64, f64)], color: &str, dash: Option<&str>) {
        if pts.is_empty() {
            return;
        }
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{},{}", n(self.px(*x)), n(self.py(*y))))
            .collect();
        let dash = dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        );
    }

    /// Dots at the points.
    pub fn dots(&self, out: &mut String, pts: &[(f64, f64)], color: &str) {
        for (x, y) in pts {
            let _ = write!(
                out,
                r#"<circle cx="{}" cy="{}" r="2.5" fill="{color}"/>"#,
                n(self.px(*x)),
                n(self.py(*y))
            );
        }
    }

    /// A marked point: a larger dot ringed in white.
    pub fn marker(&self, out: &mut String, x: f64, y: f64, color: &str) {
        let _ = write!(
            out,
            r##"<circle cx="{}" cy="{}" r="5" fill="{color}" stroke="#ffffff" stroke-width="1.5"/>"##,
            n(self.px(x)),
            n(self.py(y))
        );
    }

    /// The area between two lines sharing their x values: `(x, low, high)`.
    pub fn band(&self, out: &mut String, pts: &[(f64, f64, f64)], color: &str) {
        if pts.is_empty() {
            return;
        }
        let mut points: Vec<String> = pts
            .iter()
            .map(|(x, _, hi)| format!("{},{}", n(self.px(*x)), n(self.py(*hi))))
            .collect();
        points.extend(
            pts.iter()
                .rev()
                .map(|(x, lo, _)| format!("{},{}", n(self.px(*x)), n(self.py(*lo)))),
        );
        let _ = write!(
            out,
            r#"<polygon points="{}" fill="{color}" fill-opacity="0.18" stroke="none"/>"#,
            points.join(" ")
        );
    }

    /// A horizontal reference line at `y` with a label at its right end.
    pub fn hline(&self, out: &mut String, y: f64, color: &str, label: &str) {
        let py = self.py(y);
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{}" y="{}" class="ref" fill="{color}" text-anchor="end">{}</text>"#,
            n(self.left),
            n(py),
            n(self.left + self.width),
            n(py),
            n(self.left + self.width - 4.0),
            n(py - 4.0),
            esc(label)
        );
    }

    /// A vertical marker at `x` with a label at its top.
    pub fn vline(&self, out: &mut String, x: f64, color: &str, label: &str) {
        let px = self.px(x);
        let anchor = if px > self.left + self.width * 0.8 {
            "end"
        } else {
            "start"
        };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="1.5" stroke-dasharray="2 3"/><text x="{}" y="{}" class="ref" fill="{color}" text-anchor="{anchor}">{}</text>"#,
            n(px),
            n(self.top),
            n(px),
            n(self.top + self.height),
            n(px + dx),
            n(self.top + 12.0),
            esc(label)
        );
    }
}

/// A legend entry: label, colour, dash (`None`: solid line; `Some("box")`: a filled box).
pub(crate) type Key<'a> = (&'a str, &'a str, Option<&'a str>);

/// A row of legend entries starting at (`x`, `y`).
pub(crate) fn legend(out: &mut String, x: f64, y: f64, keys: &[Key<'_>]) {
    let mut at = x;
    for (label, color, dash) in keys {
        match dash {
            Some("box") => {
                let _ = write!(
                    out,
                    r#"<rect x="{}" y="{}" width="14" height="10" fill="{color}"/>"#,
                    n(at),
                    n(y - 9.0)
                );
            }
            _ => {
                let d = dash
                    .map(|d| format!(r#" stroke-dasharray="{d}""#))
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="2"{d}/>"#,
                    n(at),
                    n(y - 4.0),
                    n(at + 18.0),
                    n(y - 4.0)
                );
            }
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="legend">{}</text>"#,
            n(at + 22.0),
            n(y),
            esc(label)
        );
        // About 6.5 px a character at the legend's size.
        at += 22.0 + label.chars().count() as f64 * 6.5 + 16.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(
            Scale::linear(0.0, 30.0).ticks(6),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(
            Scale::log(1e-2, 1e4).ticks(6),
            vec![0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        assert_eq!(tick_label(1.2000, false), "1.2");
        assert_eq!(tick_label(1e-3, true), "1e-3");
    }

    #[test]
    fn values_outside_the_range_are_clamped_to_the_plot() {
        let p = Plot {
            left: 10.0,
            top: 10.0,
            width: 100.0,
            height: 50.0,
            x: Scale::linear(0.0, 10.0),
            y: Scale::log(0.01, 100.0),
        };
        assert_eq!(p.py(1e-9), 60.0);
        assert_eq!(p.py(1e300), 10.0);
        assert_eq!(p.px(5.0), 60.0);
    }
}
