//! The kernel timeline (Gantt: a lane per worker, a panel per mode, on the device clock) and its SM-occupancy view
//! (SMs in use per worker over time), over a window of a few kernels a lane.

use super::*;
use crate::analysis::GroupKey;
use crate::load::{Clock, Worker};
use crate::result::records::KernelRecord;

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

/// Kernels each worker's lane shows in a timeline, about.
const KERNELS_PER_LANE: u64 = 12;

/// The window a timeline shows: about [`KERNELS_PER_LANE`] kernels of each worker in the group whose workers
/// launch least often (a lane's period: its span over its kernels; the median lane of each group), at most the
/// shortest makespan. Time-sliced workers take turns, so their period is the kernel time all of them
/// together need; workers that run side by side (MPS) launch every kernel time. The same window for every panel,
/// so they compare; it never grows with the worker count alone (256 MPS workers once drew 786,000 kernels).
pub fn timeline_window_ns(groups: &[(&GroupKey, &[&Worker])], makespan_ns: u64) -> u64 {
    let median_period = |workers: &[&Worker]| {
        let mut periods: Vec<u64> = workers
            .iter()
            .filter_map(|w| w.records.extent(Clock::Device).map(|e| (e.last - e.first) / w.records.len() as u64))
            .collect();
        periods.sort_unstable();
        periods.get(periods.len() / 2).copied()
    };
    let period = groups.iter().filter_map(|(_, workers)| median_period(workers)).max().unwrap_or(0);
    makespan_ns.min(period.saturating_mul(KERNELS_PER_LANE).max(1)).max(1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;

    #[test]
    fn the_window_holds_a_few_kernels_a_lane_however_many_workers_run_side_by_side() {
        let key =
            |mode: &str, n| GroupKey { run_id: "r".into(), workers: n, gpu_uuid: "GPU-x".into(), mode: mode.into() };
        // 256 MPS workers side by side, a 1.5 ms kernel each back to back: 12 kernels a lane, not 12 x 256.
        let side_by_side: Vec<Worker> = (0..256).map(|i| synthetic("mps", 256, i, 0, 100, 1_500_000, 0)).collect();
        let mps: Vec<&Worker> = side_by_side.iter().collect();
        let mps_key = key("mps", 256);
        assert_eq!(timeline_window_ns(&[(&mps_key, &mps)], u64::MAX), 18_000_000);
        // Two time-sliced workers taking turns (1 ms kernels, 1 ms apart): their period sets the shared window.
        let turns = [
            synthetic("timeslice", 2, 0, 0, 100, 1_000_000, 1_000_000),
            synthetic("timeslice", 2, 1, 1_000_000, 100, 1_000_000, 1_000_000),
        ];
        let ts: Vec<&Worker> = turns.iter().collect();
        let ts_key = key("timeslice", 2);
        assert_eq!(timeline_window_ns(&[(&ts_key, &ts), (&mps_key, &mps)], u64::MAX), 12 * 1_990_000);
        assert_eq!(timeline_window_ns(&[(&ts_key, &ts)], 5_000_000), 5_000_000, "never past the makespan");
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
            y_desc: LATENCY_AXIS,
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
