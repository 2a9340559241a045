//! The conditions chart: the GPU's SM clock and power against time for each group, from worker 0's NVML samples.

use super::*;

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
