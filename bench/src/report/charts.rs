//! Charts with plotters, each written as SVG and PNG: latency percentile curves per mode (HDR style), a timeline
//! of kernels per worker (Gantt), SM occupancy over time coloured by worker, and throughput / p99 against worker
//! count for sweeps. The font is embedded, so charts render the same with no system fonts installed.
//!
//! Each chart is data (computed by pure functions here) plus a `draw` generic over the plotters backend.

use crate::analysis::{GroupKey, GroupSummary};
use crate::error::{Error, Result};
use crate::fsio::{self, Overwrite};
use crate::load::{Clock, Worker};
use crate::result::histogram;
use crate::result::records::KernelRecord;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
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

/// Percentiles drawn on the latency chart, as 1/(1-q) so a log axis spreads the tail (HDR style).
pub fn percentile_curve(h: &histogram::LatencyHistogram) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return vec![];
    }
    let max_x = (h.len() as f64).clamp(10.0, 1e6);
    let mut points = Vec::new();
    let mut x = 1.0f64;
    while x <= max_x {
        let q = 1.0 - 1.0 / x;
        points.push((x, h.value_at_quantile(q) as f64 / 1e6));
        x *= 1.25;
    }
    points
}

/// One group's latency curve: its legend label, mode and worker count (which pick its colour and shade).
pub struct Curve {
    pub label: String,
    pub mode: String,
    pub workers: u32,
    pub points: Vec<(f64, f64)>,
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
/// A mode's sweep points: (mode, [(workers, kernels/s, p99 ms)]).
pub type SweepSeries = (String, Vec<(u32, f64, f64)>);

pub struct LatencyChart {
    pub title: String,
    pub series: Vec<Curve>,
}

impl Chart for LatencyChart {
    fn size(&self) -> (u32, u32) {
        (900, 540)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let xs = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let max_x = xs.fold(10.0f64, f64::max);
        let ys: Vec<f64> = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|y| *y > 0.0).collect();
        let (lo, hi) = (ys.iter().copied().fold(f64::MAX, f64::min), ys.iter().copied().fold(0.0, f64::max));
        let (lo, hi) = if ys.is_empty() { (0.001, 1.0) } else { (lo * 0.8, hi * 1.25) };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((1.0f64..max_x).log_scale(), (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("percentile")
            .y_desc("latency, submit to completion (ms)")
            // Ticks at 1, 2 and 5 of each decade, so a line at 0.6 ms has a tick below it.
            .y_labels(16)
            .x_label_formatter(&|x| format!("{}%", tick((100.0 * (1.0 - 1.0 / x) * 1e3).round() / 1e3)))
            .y_label_formatter(&|y| tick(*y))
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        let all: Vec<(&str, u32)> = self.series.iter().map(|s| (s.mode.as_str(), s.workers)).collect();
        for (i, curve) in self.series.iter().enumerate() {
            let (c, width) = series_style(&all, &curve.mode, curve.workers, i);
            chart
                .draw_series(LineSeries::new(curve.points.clone(), c.stroke_width(width)))
                .map_err(err)?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width)));
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// One mode's kernels inside the chart window, per worker, in ms from the group's first start.
#[derive(Clone)]
pub struct Lane {
    pub worker: u32,
    pub kernels: Vec<(f64, f64, u16)>,
}

#[derive(Clone)]
pub struct TimelinePanel {
    pub mode: String,
    pub lanes: Vec<Lane>,
}

/// Picks each group's kernels in [its first start, + window_ns).
pub fn timeline_panels(groups: &[(&GroupKey, &[&Worker])], window_ns: u64) -> Vec<TimelinePanel> {
    groups
        .iter()
        .map(|(key, workers)| {
            let origin =
                workers.iter().filter_map(|w| w.records.extent(Clock::Device)).map(|e| e.first).min().unwrap_or(0);
            let in_window = |r: &KernelRecord| r.device_start_ns < origin + window_ns;
            let lanes = workers
                .iter()
                .map(|w| Lane {
                    worker: w.worker,
                    // Records in order end at the first one past the window: the rest is not read.
                    kernels: w
                        .records
                        .iter()
                        .take_while(|r| !w.records.in_order(Clock::Device) || in_window(r))
                        .filter(in_window)
                        .map(|r| {
                            (
                                (r.device_start_ns - origin) as f64 / 1e6,
                                (r.device_end_ns - origin) as f64 / 1e6,
                                r.sm_count,
                            )
                        })
                        .collect(),
                })
                .collect();
            TimelinePanel { mode: key.mode.clone(), lanes }
        })
        .collect()
}

/// SMs in use per worker over `buckets` equal slices of [0, window_ms): `out[worker][bucket]`. Each kernel counts
/// the distinct SMs its blocks ran on, weighted by the share of the bucket it covered. When concurrent kernels
/// together touched more than `total_sms` SMs they shared them, so each worker's part is scaled down to its share.
pub fn occupancy(panel: &TimelinePanel, window_ms: f64, buckets: usize, total_sms: u32) -> Vec<Vec<f64>> {
    let width = window_ms / buckets as f64;
    let mut per_worker: Vec<Vec<f64>> = panel
        .lanes
        .iter()
        .map(|lane| {
            let mut sms = vec![0.0; buckets];
            for &(s, e, n) in &lane.kernels {
                let (first, last) = ((s / width) as usize, ((e / width) as usize).min(buckets - 1));
                for (b, slot) in sms.iter_mut().enumerate().take(last + 1).skip(first) {
                    let (bs, be) = (b as f64 * width, (b + 1) as f64 * width);
                    let covered = (e.min(be) - s.max(bs)).max(0.0);
                    *slot += n as f64 * covered / width;
                }
            }
            sms
        })
        .collect();
    for b in 0..buckets {
        let sum: f64 = per_worker.iter().map(|w| w[b]).sum();
        if sum > total_sms as f64 {
            per_worker.iter_mut().for_each(|w| w[b] *= total_sms as f64 / sum);
        }
    }
    per_worker
}

pub struct TimelineChart {
    pub title: String,
    pub window_ms: f64,
    pub panels: Vec<TimelinePanel>,
    /// Draw SM occupancy (stacked by worker) instead of kernel bars.
    pub occupancy_of_sms: Option<u32>,
}

impl Chart for TimelineChart {
    fn size(&self) -> (u32, u32) {
        (1000, 120 + 200 * self.panels.len() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(err)?;
        let areas = root.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            let workers = panel.lanes.len().max(1);
            let x_desc = "time since the mode's first kernel (ms, %globaltimer)";
            match self.occupancy_of_sms {
                None => {
                    let mut chart = ChartBuilder::on(area)
                        .caption(&panel.mode, (FAMILY, 15))
                        .margin(8)
                        .x_label_area_size(35)
                        .y_label_area_size(70)
                        .build_cartesian_2d(0.0..self.window_ms, -0.5..workers as f64 - 0.5)
                        .map_err(err)?;
                    chart
                        .configure_mesh()
                        .light_line_style(TRANSPARENT)
                        .disable_y_mesh()
                        .y_labels(workers.min(16))
                        .y_label_formatter(&|y| {
                            if (y - y.round()).abs() < 1e-6 && *y >= 0.0 {
                                format!("worker {}", y.round() as u32)
                            } else {
                                String::new()
                            }
                        })
                        .x_desc(x_desc)
                        .label_style((FAMILY, 12))
                        .draw()
                        .map_err(err)?;
                    for (row, lane) in panel.lanes.iter().enumerate() {
                        let c = color(lane.worker as usize);
                        chart
                            .draw_series(lane.kernels.iter().map(|&(s, e, _)| {
                                Rectangle::new(
                                    [(s, row as f64 - 0.38), (e.min(self.window_ms), row as f64 + 0.38)],
                                    c.filled(),
                                )
                            }))
                            .map_err(err)?;
                    }
                }
                Some(total_sms) => {
                    // 200 slices: 4-5 pixels each at this width, half the SVG of 400 for the same picture.
                    let buckets = 200;
                    let per_worker = occupancy(panel, self.window_ms, buckets, total_sms);
                    let mut chart = ChartBuilder::on(area)
                        .caption(format!("{}: SMs in use by worker", panel.mode), (FAMILY, 15))
                        .margin(8)
                        .x_label_area_size(35)
                        .y_label_area_size(70)
                        .build_cartesian_2d(0.0..self.window_ms, 0.0..(total_sms as f64 * 1.05).max(1.0))
                        .map_err(err)?;
                    chart
                        .configure_mesh()
                        .light_line_style(TRANSPARENT)
                        .x_desc(x_desc)
                        .y_desc("SMs")
                        .label_style((FAMILY, 12))
                        .draw()
                        .map_err(err)?;
                    let width = self.window_ms / buckets as f64;
                    let mut stacked = vec![0.0; buckets];
                    let mut layers = Vec::new();
                    for sms in &per_worker {
                        for (s, v) in stacked.iter_mut().zip(sms) {
                            *s += v;
                        }
                        layers.push(stacked.clone());
                    }
                    for (i, layer) in layers.iter().enumerate().rev() {
                        let c = color(panel.lanes[i].worker as usize);
                        let points: Vec<(f64, f64)> =
                            layer.iter().enumerate().map(|(b, v)| ((b as f64 + 0.5) * width, *v)).collect();
                        chart.draw_series(AreaSeries::new(points, 0.0, c.mix(0.85)).border_style(c)).map_err(err)?;
                    }
                    chart
                        .draw_series(LineSeries::new(
                            vec![(0.0, total_sms as f64), (self.window_ms, total_sms as f64)],
                            BLACK.stroke_width(1),
                        ))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

pub struct SweepChart {
    pub title: String,
    /// (mode, points of (workers, kernels/s, p99 ms)).
    pub series: Vec<SweepSeries>,
    /// What the x axis counts ("workers", "Pods per GPU").
    pub x_label: &'static str,
    /// The throughput axis: "aggregate throughput (kernels/s)", "(requests/s)".
    pub throughput_label: &'static str,
    /// A p99 SLO to draw as a line on the latency panel.
    pub slo_ms: Option<f64>,
    /// Each repeat's points, drawn as hollow dots beside the series (the medians).
    pub repeats: Vec<SweepSeries>,
}

impl Chart for SweepChart {
    fn size(&self) -> (u32, u32) {
        (1000, 460)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(err)?;
        let (left, right) = root.split_horizontally(500);
        let max_w =
            self.series.iter().chain(&self.repeats).flat_map(|s| s.1.iter().map(|p| p.0)).max().unwrap_or(1) as f64;
        for (area, pick, y_desc) in [(&left, 1usize, self.throughput_label), (&right, 2, "p99 latency (ms)")] {
            let value = |p: &(u32, f64, f64)| if pick == 1 { p.1 } else { p.2 };
            let slo = if pick == 2 { self.slo_ms.unwrap_or(0.0) } else { 0.0 };
            // The rings of the repeats count too: none may fall off the panel.
            let all = self.series.iter().chain(&self.repeats);
            let max_y = all.flat_map(|s| s.1.iter().map(value)).filter(|v| v.is_finite()).fold(slo, f64::max) * 1.15;
            // Room right of the last count for the legend, so it covers no point.
            let x_end = max_w * 1.45;
            let mut chart = linear_panel(area, x_end, max_y.max(1e-9), (self.x_label, true), y_desc)?;
            if let (2, Some(slo)) = (pick, self.slo_ms) {
                chart
                    .draw_series(LineSeries::new(vec![(0.0, slo), (x_end, slo)], BLACK.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("SLO {slo} ms"))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
            }
            for (i, (mode, points)) in self.series.iter().enumerate() {
                let c = mode_color(mode, i);
                let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.0 as f64, value(p))).collect();
                chart
                    .draw_series(LineSeries::new(xy.clone(), c.stroke_width(2)))
                    .map_err(err)?
                    .label(mode.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                chart.draw_series(xy.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
                let dots = self.repeats.iter().filter(|r| &r.0 == mode).flat_map(|r| r.1.iter());
                chart
                    .draw_series(dots.map(|p| Circle::new((p.0 as f64, value(p)), 3, c.stroke_width(1))))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FAMILY, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// One group's telemetry over time: (seconds since its worker 0 started measuring, SM MHz, power W).
pub struct ConditionsSeries {
    pub label: String,
    pub mode: String,
    pub workers: u32,
    pub points: Vec<(f64, Option<f64>, Option<f64>)>,
}

/// The GPU's SM clock and power against time, per group: the conditions beside the kernel timeline.
pub struct ConditionsChart {
    pub title: String,
    pub series: Vec<ConditionsSeries>,
}

impl Chart for ConditionsChart {
    fn size(&self) -> (u32, u32) {
        (1000, 420)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(err)?;
        let (left, right) = root.split_horizontally(500);
        let max_t = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.1f64, f64::max);
        for (area, pick, y_desc) in [(&left, 1usize, "SM clock (MHz)"), (&right, 2, "power draw (W)")] {
            let value = |p: &(f64, Option<f64>, Option<f64>)| if pick == 1 { p.1 } else { p.2 };
            let max_y = self.series.iter().flat_map(|s| s.points.iter().filter_map(value)).fold(1.0, f64::max) * 1.15;
            let x_desc = "time since worker 0 started measuring (s)";
            let mut chart = linear_panel(area, max_t * 1.02, max_y, (x_desc, false), y_desc)?;
            let all: Vec<(&str, u32)> = self.series.iter().map(|o| (o.mode.as_str(), o.workers)).collect();
            for (i, s) in self.series.iter().enumerate() {
                let (c, width) = series_style(&all, &s.mode, s.workers, i);
                let xy: Vec<(f64, f64)> = s.points.iter().filter_map(|p| value(p).map(|v| (p.0, v))).collect();
                chart
                    .draw_series(LineSeries::new(xy, c.stroke_width(width)))
                    .map_err(err)?
                    .label(s.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FAMILY, 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A group summary's points for the sweep chart.
pub fn sweep_series(figures: &[&crate::analysis::GroupFigures]) -> Vec<SweepSeries> {
    by_mode(figures.iter().map(|f| {
        let p99 = f.p99_ns.as_ref().map_or(f64::NAN, |p| p.median / 1e6);
        (f.key.mode.clone(), (f.key.workers, f.throughput.median, p99))
    }))
}

/// Each repeat's (workers, throughput, p99 ms) by mode: the dots beside the medians.
pub fn repeat_points(groups: &[&GroupSummary]) -> Vec<SweepSeries> {
    by_mode(
        groups
            .iter()
            .map(|g| (g.key.mode.clone(), (g.key.workers, g.kernels_per_s.value, g.latency.p99_ns as f64 / 1e6))),
    )
}

fn by_mode(points: impl Iterator<Item = (String, (u32, f64, f64))>) -> Vec<SweepSeries> {
    let mut by_mode: std::collections::BTreeMap<String, Vec<(u32, f64, f64)>> = Default::default();
    for (mode, p) in points {
        by_mode.entry(mode).or_default().push(p);
    }
    by_mode
        .into_iter()
        .map(|(m, mut v)| {
            v.sort_by_key(|p| p.0);
            (m, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;

    #[test]
    fn a_compact_svg_drops_only_default_opacities() {
        let svg =
            r##"<rect x="0" opacity="1" fill="#FFFFFF"/><line opacity="0.1" x1="85"/><text opacity="1">a</text>"##;
        assert_eq!(compact_svg(svg), r##"<rect x="0" fill="#FFFFFF"/><line opacity="0.1" x1="85"/><text>a</text>"##);
    }

    #[test]
    fn occupancy_splits_kernels_across_buckets() {
        let panel =
            TimelinePanel { mode: "mps".into(), lanes: vec![Lane { worker: 0, kernels: vec![(0.0, 1.5, 100)] }] };
        let occ = occupancy(&panel, 2.0, 2, 132);
        assert_eq!(occ, vec![vec![100.0, 50.0]]);
        let shared = TimelinePanel {
            mode: "mps".into(),
            lanes: vec![
                Lane { worker: 0, kernels: vec![(0.0, 1.0, 132)] },
                Lane { worker: 1, kernels: vec![(0.0, 1.0, 132)] },
            ],
        };
        assert_eq!(occupancy(&shared, 1.0, 1, 132), vec![vec![66.0], vec![66.0]]);
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

    #[test]
    fn percentile_curve_rises() {
        let w = synthetic("mps", 1, 0, 0, 1000, 1000, 0);
        let curve = percentile_curve(&w.histogram.to_histogram());
        assert!(curve.len() > 10);
        assert!(curve.windows(2).all(|p| p[1].1 >= p[0].1 && p[1].0 > p[0].0));
    }

    #[test]
    fn charts_render_to_svg_and_png_without_system_fonts() {
        let dir = tempfile::tempdir().unwrap();
        let ws = [synthetic("mps", 2, 0, 0, 50, 1_000_000, 0), synthetic("mps", 2, 1, 500_000, 50, 1_000_000, 0)];
        let key = GroupKey { run_id: "r".into(), workers: 2, gpu_uuid: "GPU-x".into(), mode: "mps".into() };
        let members: Vec<&Worker> = ws.iter().collect();
        let panels = timeline_panels(&[(&key, &members)], 10_000_000);
        let chart = TimelineChart { title: "timeline".into(), window_ms: 10.0, panels, occupancy_of_sms: None };
        let (svg, png) = save(&chart, dir.path(), "timeline", Overwrite::Refuse).unwrap();
        let svg_text = std::fs::read_to_string(dir.path().join(&svg)).unwrap();
        assert!(svg_text.contains("<svg") && svg_text.contains("<rect") && svg_text.contains("worker"));
        let png_bytes = std::fs::read(dir.path().join(&png)).unwrap();
        assert_eq!(&png_bytes[1..4], b"PNG");
        let latency = LatencyChart {
            title: "latency".into(),
            series: vec![Curve {
                label: "mps x2".into(),
                mode: "mps".into(),
                workers: 2,
                points: percentile_curve(&ws[0].histogram.to_histogram()),
            }],
        };
        save(&latency, dir.path(), "latency", Overwrite::Refuse).unwrap();
        assert!(save(&latency, dir.path(), "latency", Overwrite::Refuse)
            .unwrap_err()
            .problem
            .contains("already exists"));
    }
}
