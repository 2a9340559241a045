//! The sweep chart: throughput and p99 against worker (or Pod) count, a line per mode through the medians across
//! repeats and a ring for each repeat, with the SLO where a plan has one.

use super::*;
use crate::analysis::GroupSummary;

/// A mode's sweep points: (mode, [(workers, kernels/s, p99 ms)]).
pub type SweepSeries = (String, Vec<(u32, f64, f64)>);

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

    /// The numbers of `name="..."` attributes in an SVG element.
    fn attr(element: &str, name: &str) -> f64 {
        let at = element.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        element[at..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn the_legend_covers_no_point_even_the_highest_at_the_most_workers() {
        // The highest points near the most workers: where an upper-right legend would sit on an axis ending there.
        let series = vec![
            (
                "mps".to_string(),
                vec![(1, 900.0, 0.6), (2, 1500.0, 0.7), (6, 2900.0, 1.1), (7, 3000.0, 1.3), (8, 2950.0, 2.0)],
            ),
            ("streams".to_string(), vec![(1, 890.0, 0.6), (2, 1700.0, 0.7), (4, 2500.0, 1.0), (8, 2900.0, 1.9)]),
            ("timeslice".to_string(), vec![(1, 880.0, 0.6), (2, 1000.0, 1.3), (4, 1100.0, 2.6), (8, 1150.0, 5.1)]),
        ];
        let chart = SweepChart {
            title: "sweep".into(),
            repeats: series.clone(),
            series,
            x_label: "workers",
            throughput_label: "aggregate throughput (kernels/s)",
            slo_ms: Some(5.0),
        };
        let dir = tempfile::tempdir().unwrap();
        let (svg, _) = save(&chart, dir.path(), "sweep", crate::fsio::Overwrite::Refuse).unwrap();
        let svg = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        let elements = |tag: &str| -> Vec<String> {
            svg.split('<').filter(|e| e.starts_with(tag)).map(|e| format!(" {}", &e[tag.len()..])).collect()
        };
        // The legends' borders: unfilled black rectangles.
        let legends: Vec<(f64, f64, f64, f64)> = elements("rect ")
            .iter()
            .filter(|r| r.contains("fill=\"none\"") && r.contains("stroke=\"#000000\""))
            .map(|r| (attr(r, "x"), attr(r, "y"), attr(r, "width"), attr(r, "height")))
            .collect();
        assert_eq!(legends.len(), 2, "one legend a panel");
        let points: Vec<(f64, f64, f64)> =
            elements("circle ").iter().map(|c| (attr(c, "cx"), attr(c, "cy"), attr(c, "r"))).collect();
        assert_eq!(points.len(), 2 * (13 + 13), "every median and every repeat, on both panels");
        for (x, y, w, h) in &legends {
            for (cx, cy, r) in &points {
                let inside = *cx + r > *x && *cx - r < x + w && *cy + r > *y && *cy - r < y + h;
                assert!(!inside, "the point at ({cx}, {cy}) lies under the legend at ({x}, {y}, {w} x {h})");
            }
        }
    }
}
