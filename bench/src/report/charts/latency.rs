//! The latency chart: each group's percentile curve (HDR style: 1/(1-q) on a log axis spreads the tail), coloured
//! by mode and shaded by worker count.

use super::*;
use crate::result::histogram;

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

pub struct LatencyChart {
    pub title: String,
    /// What the y axis measures (ms): a request's latency, or a streamed request's TTFT or TPOT.
    pub y_desc: &'static str,
    pub series: Vec<Curve>,
}

/// The y axis of the latency chart.
pub const LATENCY_AXIS: &str = "latency, submit to completion (ms)";

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
            .y_desc(self.y_desc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;

    #[test]
    fn percentile_curve_rises() {
        let w = synthetic("mps", 1, 0, 0, 1000, 1000, 0);
        let curve = percentile_curve(&w.histogram.to_histogram());
        assert!(curve.len() > 10);
        assert!(curve.windows(2).all(|p| p[1].1 >= p[0].1 && p[1].0 > p[0].0));
    }
}
