//! `--plot`: the latency of every join over the run, as an SVG a browser shows — one dot
//! per node (when its join started, how long it took) and the p50 and p99 of each second.

use std::fmt::Write;
use std::time::Duration;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// The smallest "nice" number (1, 2, 2.5 or 5 times a power of ten) at least `x`.
pub fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

/// The p-th percentile (nearest rank) of sorted `v`.
fn nearest_rank(v: &[f64], p: f64) -> f64 {
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Per whole second of start time: (second, p50 ms, p99 ms) of the joins started in it.
pub fn per_second(samples: &[(Duration, Duration)]) -> Vec<(u64, f64, f64)> {
    let mut buckets: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for (start, took) in samples {
        buckets
            .entry(start.as_secs())
            .or_default()
            .push(took.as_secs_f64() * 1000.0);
    }
    buckets
        .into_iter()
        .map(|(s, mut v)| {
            v.sort_by(f64::total_cmp);
            (s, nearest_rank(&v, 0.50), nearest_rank(&v, 0.99))
        })
        .collect()
}

/// The SVG document.
pub fn latency_svg(samples: &[(Duration, Duration)], title: &str) -> String {
    let max_x = nice_ceiling(
        samples
            .iter()
            .map(|(s, _)| s.as_secs_f64())
            .fold(0.0, f64::max)
            .max(1.0),
    );
    let max_y = nice_ceiling(
        samples
            .iter()
            .map(|(_, t)| t.as_secs_f64() * 1000.0)
            .fold(0.0, f64::max),
    );
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |s: f64| LEFT + s / max_x * pw;
    let y = |ms: f64| TOP + ph - ms / max_y * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="24" font-size="15">{}</text>
"##,
        escape(title)
    );
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let (gx, gy) = (x(f * max_x), y(f * max_y));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            gy + 4.0,
            trim(f * max_y)
        );
        let _ = writeln!(
            out,
            r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph + 18.0,
            trim(f * max_x)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">join started (s)</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">whole join (ms)</text>"##,
        LEFT + pw / 2.0,
        HEIGHT - 10.0,
        TOP + ph / 2.0
    );
    out.push_str(r##"<g fill="#4477aa" fill-opacity="0.35">"##);
    for (s, t) in samples {
        let _ = write!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.6"/>"##,
            x(s.as_secs_f64()),
            y(t.as_secs_f64() * 1000.0)
        );
    }
    out.push_str("</g>\n");
    let seconds = per_second(samples);
    for (label, pick, color, row) in [("p50", 1usize, "#228833", 0.0), ("p99", 2, "#cc3311", 16.0)]
    {
        let points: Vec<String> = seconds
            .iter()
            .map(|b| {
                let v = if pick == 1 { b.1 } else { b.2 };
                format!("{:.1},{:.1}", x(b.0 as f64 + 0.5), y(v))
            })
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{:.1}" y="{:.1}" fill="{color}">{label} per second</text>"##,
            points.join(" "),
            LEFT + pw - 110.0,
            TOP + 14.0 + row
        );
    }
    out.push_str("</svg>\n");
    out
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn axes_end_on_nice_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(1_800.0), 2_000.0);
        assert_eq!(nice_ceiling(2_200.0), 2_500.0);
        assert_eq!(nice_ceiling(3_100.0), 5_000.0);
    }

    #[test]
    fn each_second_has_its_own_percentiles() {
        let mut samples: Vec<(Duration, Duration)> = (1..=100).map(|i| (ms(100), ms(i))).collect();
        samples.push((ms(1_500), ms(400)));
        let got = per_second(&samples);
        assert_eq!(got, vec![(0, 50.0, 99.0), (1, 400.0, 400.0)]);
    }

    #[test]
    fn the_plot_has_a_dot_per_node_and_both_lines() {
        let samples: Vec<(Duration, Duration)> =
            (0..250).map(|i| (ms(i * 10), ms(100 + i))).collect();
        let svg = latency_svg(&samples, "1000 nodes <test>");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 250);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("1000 nodes &lt;test&gt;"),
            "the title is escaped"
        );
        // Latencies up to 349 ms: the y axis ends at 500.
        assert!(svg.contains(">500</text>"));
    }
}
