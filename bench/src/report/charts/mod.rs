//! Charts with plotters, each written as SVG and PNG: latency percentile curves per mode (HDR style), a timeline
//! of kernels per worker (Gantt), SM occupancy over time coloured by worker, and throughput / p99 against worker
//! count for sweeps. The font is embedded, so charts render the same with no system fonts installed.
//!
//! Each chart is data (computed by pure functions here) plus a `draw` generic over the plotters backend.

//! One module a chart (`latency`, `timeline` with its occupancy view, `sweep`, `conditions`); this one holds what
//! they share: the embedded font, the colours, the axis ticks, and `save`, which writes a chart as both files.

mod conditions;
mod latency;
mod sweep;
mod timeline;

pub use conditions::{ConditionsChart, ConditionsSeries};
pub use latency::{percentile_curve, Curve, LatencyChart, LATENCY_AXIS};
pub use sweep::{repeat_points, sweep_series, SweepChart, SweepSeries};
pub use timeline::{occupancy, timeline_panels, timeline_window_ns, Lane, TimelineChart, TimelinePanel};

use crate::error::{Error, Result};
use crate::fsio::{self, Overwrite};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

type DrawResult = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A chart that can draw itself on any backend.
pub trait Chart {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Writes `<dir>/<name>.svg` and `<dir>/<name>.png`; returns the two file names.
pub fn save(chart: &impl Chart, dir: &Path, name: &str, overwrite: Overwrite) -> Result<(String, String)> {
    register_font();
    let fail = |e: String| Error::new(format!("drawing chart {name}: {e}"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(err(e)))?;
    }
    let svg_name = format!("{name}.svg");
    fsio::write_atomic(&dir.join(&svg_name), compact_svg(&svg).as_bytes(), overwrite)?;
    let png_name = format!("{name}.png");
    let (w, h) = chart.size();
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(err(e)))?;
    }
    let png = encode_png(&pixels, w, h).map_err(fail)?;
    fsio::write_atomic(&dir.join(&png_name), &png, overwrite)?;
    Ok((svg_name, png_name))
}

/// The SVG without what only restates a default: plotters writes `opacity="1"` on every element (a tenth of a
/// chart's bytes; SVG's default opacity is 1, so the picture is the same).
fn compact_svg(svg: &str) -> String {
    svg.replace(" opacity=\"1\"", "")
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(rgb, w, h, image::ColorType::Rgb8).map_err(err)?;
    Ok(out)
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

fn mode_color(mode: &str, i: usize) -> RGBColor {
    match mode {
        "timeslice" => RGBColor(214, 39, 40),
        "mps" => RGBColor(31, 119, 180),
        "streams" => RGBColor(44, 160, 44),
        _ => color(i + 3),
    }
}
/// The mode's colour, lighter and thinner for fewer workers: the `rank`-th of `of` worker counts of that mode
/// (0 = fewest) gets a shade from 35% white to the full colour, and a line 2 to 3 pixels wide (lighter or
/// thinner than that, a one-worker line was hard to see on white).
pub fn shade(base: RGBColor, rank: usize, of: usize) -> (RGBColor, u32) {
    let t = if of <= 1 { 1.0 } else { rank as f64 / (of - 1) as f64 };
    let white = 0.35 * (1.0 - t);
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * white).round() as u8;
    (RGBColor(mix(base.0), mix(base.1), mix(base.2)), 2 + t.round() as u32)
}

/// One panel of a two-panel chart: linear axes from 0, described, with whole-number ticks where they are whole.
fn linear_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x_max: f64,
    y_max: f64,
    (x_desc, whole_x): (&str, bool),
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        // No minor grid, in any chart: it doubled the size of an SVG (results/ stays under 15 MB) for faint lines.
        .light_line_style(TRANSPARENT)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| if whole_x { count_tick(*x) } else { tick(*x) })
        .y_label_formatter(&|y| tick(*y))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The colour and line width of the `i`-th series, of `mode` with `workers`, among all series' (mode, workers):
/// the mode's colour, shaded by the rank of its worker count among that mode's counts ([`shade`]).
fn series_style(all: &[(&str, u32)], mode: &str, workers: u32, i: usize) -> (RGBColor, u32) {
    let mut counts: Vec<u32> = all.iter().filter(|(m, _)| *m == mode).map(|(_, n)| *n).collect();
    counts.sort_unstable();
    counts.dedup();
    let rank = counts.iter().position(|&n| n == workers).unwrap_or(0);
    shade(mode_color(mode, i), rank, counts.len())
}

/// A tick on a count axis (workers, Pods): a count has no 0.5, so such ticks are left blank.
pub fn count_tick(v: f64) -> String {
    if v.fract() == 0.0 {
        tick(v)
    } else {
        String::new()
    }
}

/// An axis tick: whole numbers without decimals (`5000`, not `5000.0`), others with three significant digits.
pub fn tick(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        crate::units::three_digits(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_svg_drops_only_default_opacities() {
        let svg =
            r##"<rect x="0" opacity="1" fill="#FFFFFF"/><line opacity="0.1" x1="85"/><text opacity="1">a</text>"##;
        assert_eq!(compact_svg(svg), r##"<rect x="0" fill="#FFFFFF"/><line opacity="0.1" x1="85"/><text>a</text>"##);
    }

    #[test]
    fn worker_counts_of_one_mode_get_distinct_shades_and_widths() {
        let base = RGBColor(31, 119, 180);
        let shades: Vec<(RGBColor, u32)> = (0..4).map(|r| shade(base, r, 4)).collect();
        assert_eq!(shades[3], (base, 3), "the most workers: the mode's own colour, widest");
        assert_eq!(shades[0].1, 2, "the fewest still 2 px wide");
        // And no lighter than 35% white: a one-worker line stays visible.
        assert!(shades[0].0 .2 <= 180 + ((255 - 180) as f64 * 0.35).round() as u8);
        for pair in shades.windows(2) {
            assert_ne!(pair[0].0, pair[1].0);
            assert!(pair[0].0 .0 >= pair[1].0 .0, "fewer workers are lighter");
        }
        assert_eq!(shade(base, 0, 1), (base, 3), "a single count keeps the full colour");
    }

    #[test]
    fn a_count_axis_shows_whole_counts_only() {
        let labels: Vec<String> = [0.0, 0.5, 1.0, 1.5, 2.0, 12.0].iter().map(|&v| count_tick(v)).collect();
        assert_eq!(labels, ["0", "", "1", "", "2", "12"]);
    }

    #[test]
    fn ticks_carry_no_spurious_decimals() {
        assert_eq!(tick(5000.0), "5000");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(0.25), crate::units::three_digits(0.25));
    }
}
