//! Writes a report directory: report.json, report.md, report.html, summary.csv, trace.json and the charts.
//! The only module of `report` with effects. Every file is written atomically, and `report.json` last: it marks a
//! whole report. A directory with a whole report is not replaced without `force`; one with the leftovers of a
//! report that was stopped midway (no report.json) is replaced, with a note; either way the earlier report's
//! chart folders and temporary files go first, so no stale chart is shown beside new figures.

use super::charts::{self, LatencyChart, SweepChart, TimelineChart};
use super::model::{describe_workload, ChartFile, Report};
use crate::analysis::GroupKey;
use crate::error::{Error, Result};
use crate::fsio::{self, Overwrite};
use crate::load::{Loaded, Worker};
use crate::result::histogram;
use std::collections::BTreeMap;
use std::path::Path;

/// A file-name-safe form of a run id.
pub fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// The chart folder of one run on one GPU: readable (the run id and the GPU's start, made file-name-safe and
/// cut to a length any file system takes) and unique (a hash of both in full: `run/1` and `run_1`, or two
/// MIG-style UUIDs that share their start, never share a folder).
pub fn run_folder(run: &str, gpu: &str) -> String {
    let hash = crate::units::fnv1a(run.bytes().chain([0]).chain(gpu.bytes()));
    let (run, gpu) = (slug(run), slug(gpu));
    format!("runs/{}-{}-{:08x}", crate::units::first_chars(&run, 40), crate::units::first_chars(&gpu, 12), hash as u32)
}

/// Where one run's charts go.
struct Place<'a> {
    dir: &'a Path,
    /// `runs/<run>-<gpu>/`, or empty for a one-run report.
    folder: String,
    run: &'a str,
    gpu: &'a str,
    overwrite: Overwrite,
}

impl Place<'_> {
    fn save(&self, chart: &impl charts::Chart, name: &str, title: String) -> Result<ChartFile> {
        let (svg, png) = charts::save(chart, self.dir, &format!("{}{name}", self.folder), self.overwrite)?;
        Ok(ChartFile { run_id: self.run.into(), gpu_uuid: self.gpu.into(), title, svg, png })
    }
}

/// Renders the charts of every run, each run's in its own folder (`runs/<run>-<gpu>/`) when there are several.
fn write_charts(
    report: &Report,
    groups: &BTreeMap<GroupKey, Vec<&Worker>>,
    dir: &Path,
    overwrite: Overwrite,
) -> Result<Vec<ChartFile>> {
    let mut by_run: BTreeMap<(String, String), Vec<&GroupKey>> = BTreeMap::new();
    for key in groups.keys() {
        by_run.entry((key.run_id.clone(), key.gpu_uuid.clone())).or_default().push(key);
    }
    // Each run's charts on a core of its own.
    let runs: Vec<(&(String, String), &Vec<&GroupKey>)> = by_run.iter().collect();
    let in_folder = runs.len() > 1;
    let per_run = crate::parallel::map(&runs, |((run, gpu), keys)| {
        write_run_charts(report, groups, (run, gpu, keys), dir, in_folder, overwrite)
    });
    let mut out = Vec::new();
    for charts in per_run {
        out.extend(charts?);
    }
    Ok(out)
}

/// The charts of one run on one GPU, in its own folder when the report holds several.
fn write_run_charts(
    report: &Report,
    groups: &BTreeMap<GroupKey, Vec<&Worker>>,
    (run, gpu, keys): (&str, &str, &[&GroupKey]),
    dir: &Path,
    in_folder: bool,
    overwrite: Overwrite,
) -> Result<Vec<ChartFile>> {
    let mut out = Vec::new();
    let folder = if in_folder {
        let f = run_folder(run, gpu);
        std::fs::create_dir_all(dir.join(&f)).map_err(|e| Error::io("create directory", &dir.join(&f), e))?;
        f + "/"
    } else {
        String::new()
    };
    let place = Place { dir, folder, run, gpu, overwrite };
    let curves = |figure: Figure| -> Vec<charts::Curve> {
        keys.iter()
            .filter_map(|k| {
                let parts: Vec<&histogram::Recorded> = groups[k].iter().filter_map(|w| figure(w)).collect();
                let h = (!parts.is_empty()).then(|| histogram::merged(parts))?;
                Some(charts::Curve {
                    label: format!("{} x{} (n={})", k.mode, k.workers, h.len()),
                    mode: k.mode.clone(),
                    workers: k.workers,
                    points: charts::percentile_curve(&h),
                })
            })
            .collect()
    };
    let title = "Latency by percentile (colour: mode; shade and width: worker count)".to_string();
    let chart =
        LatencyChart { title: title.clone(), y_desc: charts::LATENCY_AXIS, series: curves(&|w| Some(&w.histogram)) };
    out.push(place.save(&chart, "latency", title)?);
    // A streaming (LLM) run: its first tokens and its tokens after them, each on a chart of its own.
    let streams: [(&str, &str, &'static str, Figure); 2] = [
        ("ttft", "Time to first token by percentile", "time to first token (ms)", &|w| {
            w.streaming.as_ref().map(|s| &s.ttft)
        }),
        ("tpot", "Time per output token by percentile", "time per output token after the first (ms)", &|w| {
            w.streaming.as_ref().and_then(|s| s.tpot.as_ref())
        }),
    ];
    for (name, what, y_desc, figure) in streams {
        let series = curves(figure);
        if !series.is_empty() {
            let title = format!("{what} (colour: mode; shade and width: worker count)");
            out.push(place.save(&LatencyChart { title: title.clone(), y_desc, series }, name, title)?);
        }
    }

    let mut counts: Vec<u32> = keys.iter().map(|k| k.workers).filter(|&n| n > 1).collect();
    counts.sort_unstable();
    counts.dedup();
    for n in counts {
        // Timelines are drawn from device stamps: groups with a foreign command's workers have none.
        let members: Vec<(&GroupKey, &[&Worker])> = keys
            .iter()
            .filter(|k| k.workers == n && groups[k].iter().all(|w| w.device_stamps))
            .map(|k| (*k, groups[k].as_slice()))
            .collect();
        if members.is_empty() {
            continue;
        }
        let makespan = report
            .analysis
            .groups
            .iter()
            .filter(|g| g.key.run_id == *run && g.key.workers == n)
            .map(|g| g.makespan_ns)
            .min()
            .unwrap_or(0);
        let window_ns = charts::timeline_window_ns(&members, makespan);
        let first = members[0].1[0];
        let shape = describe_workload(first.config.shape.as_ref(), first.config.command.as_deref());
        let sms = members[0].1[0].gpu.sm_count;
        let panels = charts::timeline_panels(&members, window_ns);
        for occupancy in [false, true] {
            let (what, name) = if occupancy { ("SM occupancy", "occupancy") } else { ("Kernel timeline", "timeline") };
            let title = format!("{what}: {n} workers, {shape}");
            let chart = TimelineChart {
                title: title.clone(),
                window_ms: window_ns as f64 / 1e6,
                panels: panels.clone(),
                occupancy_of_sms: occupancy.then_some(sms),
            };
            out.push(place.save(&chart, &format!("{name}-{n}w"), title)?);
        }
    }
    let conditions: Vec<charts::ConditionsSeries> = keys
        .iter()
        .filter_map(|k| {
            let t = groups[k].iter().find_map(|w| w.telemetry.as_ref()).filter(|t| !t.samples.is_empty())?;
            Some(charts::ConditionsSeries {
                label: format!("{} x{}", k.mode, k.workers),
                mode: k.mode.clone(),
                workers: k.workers,
                points: t
                    .samples
                    .iter()
                    .map(|s| (s.t_ms as f64 / 1e3, s.sm_mhz.map(f64::from), s.power_mw.map(|mw| mw as f64 / 1e3)))
                    .collect(),
            })
        })
        .collect();
    if !conditions.is_empty() {
        let title = "GPU conditions: SM clock and power during each group (NVML, worker 0)".to_string();
        out.push(place.save(
            &charts::ConditionsChart { title: title.clone(), series: conditions },
            "conditions",
            title,
        )?);
    }
    let summaries: Vec<_> =
        report.analysis.groups.iter().filter(|g| g.key.run_id == *run && g.key.gpu_uuid == *gpu).collect();
    let figures: Vec<_> =
        report.analysis.figures.iter().filter(|f| f.key.run_id == *run && f.key.gpu_uuid == *gpu).collect();
    let distinct: std::collections::BTreeSet<u32> = summaries.iter().map(|g| g.key.workers).collect();
    if distinct.len() > 1 || figures.iter().any(|f| f.repeats.len() > 1) {
        let title = "Throughput and p99 against worker count: median (line) and each repeat (rings)".to_string();
        let chart = SweepChart {
            title: title.clone(),
            series: charts::sweep_series(&figures),
            x_label: "workers",
            throughput_label: super::table::Unit::of(&summaries).throughput_axis(),
            slo_ms: None,
            repeats: charts::repeat_points(&summaries),
        };
        out.push(place.save(&chart, "sweep", title)?);
    }
    Ok(out)
}

/// The files a report writes at the top of its directory (charts are `*.svg`/`*.png` beside them, or under
/// `runs/`), `report.json` last.
const REPORT_FILES: [&str; 5] = ["summary.csv", "report.md", "report.html", "trace.json", "report.json"];

/// Removes what an earlier report left in `dir`: its chart folders (`runs/`), its top-level charts, and the
/// temporary files of a write that was stopped. Only sharebench's own names are touched.
fn clear_earlier_report(dir: &Path) -> Result<()> {
    let runs = dir.join("runs");
    if runs.is_dir() {
        std::fs::remove_dir_all(&runs).map_err(|e| Error::io("remove", &runs, e))?;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let chart =
            CHART_NAMES.iter().any(|c| name.starts_with(c)) && (name.ends_with(".svg") || name.ends_with(".png"));
        if fsio::is_temp_name(&name) || chart {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Which histogram of a worker a percentile chart draws.
type Figure<'a> = &'a dyn Fn(&Worker) -> Option<&histogram::Recorded>;

/// The stems of the charts a report writes.
const CHART_NAMES: [&str; 8] =
    ["latency", "ttft.", "tpot.", "timeline-", "occupancy-", "conditions", "sweep", "capacity"];

/// A scoped thread's value, or its panic passed on.
fn joined<T>(result: std::thread::Result<T>) -> T {
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Writes every report file into `dir`.
pub fn write_all(report: &Report, loaded: &Loaded, dir: &Path, overwrite: Overwrite) -> Result<Vec<String>> {
    let whole = dir.join("report.json").exists();
    if overwrite == Overwrite::Refuse && whole {
        return Err(Error::new(format!("{} already holds a report", dir.display()))
            .fix("pass --force to replace it, or choose another --out"));
    }
    if !whole && REPORT_FILES.iter().any(|f| dir.join(f).exists()) {
        eprintln!(
            "sharebench report: {} holds the leftovers of a report that was stopped before it was whole (no report.json): replacing them",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    clear_earlier_report(dir)?;
    // Nothing of a whole report is left to protect now: its leftovers are replaced.
    let overwrite = Overwrite::Allow;
    // The charts are drawn while the trace and report.json are rendered on other cores.
    let groups = crate::analysis::group_workers(&loaded.workers);
    let (charts, json, trace) = std::thread::scope(|scope| {
        let trace = scope.spawn(|| {
            let ordered: Vec<(&GroupKey, &[&Worker])> = groups.iter().map(|(k, ws)| (k, ws.as_slice())).collect();
            super::trace::render(&ordered)
        });
        let json = scope.spawn(|| serde_json::to_string_pretty(report));
        let charts = write_charts(report, &groups, dir, overwrite);
        (charts, joined(json.join()), joined(trace.join()))
    });
    let charts = charts?;
    let json = json.map_err(|e| Error::new(format!("serializing the report: {e}")))?;
    fsio::write_atomic(&dir.join("summary.csv"), super::csv::render(report).as_bytes(), overwrite)?;
    fsio::write_atomic(&dir.join("report.md"), super::markdown::render(report, &charts).as_bytes(), overwrite)?;
    let inline: Vec<(String, String, String, String)> = charts
        .iter()
        .map(|c| {
            let svg = std::fs::read_to_string(dir.join(&c.svg)).unwrap_or_default();
            (c.run_id.clone(), c.gpu_uuid.clone(), c.title.clone(), svg)
        })
        .collect();
    fsio::write_atomic(&dir.join("report.html"), super::html::render(report, &inline).as_bytes(), overwrite)?;
    fsio::write_atomic(&dir.join("trace.json"), trace.as_bytes(), overwrite)?;
    // Last: report.json marks the report whole.
    fsio::write_atomic(&dir.join("report.json"), json.as_bytes(), overwrite)?;
    let mut files =
        vec!["report.json".into(), "report.md".into(), "report.html".into(), "summary.csv".into(), "trace.json".into()];
    files.extend(charts.into_iter().flat_map(|c| [c.svg, c.png]));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_are_unique_short_and_safe_for_any_run_id_and_gpu() {
        // A non-ASCII GPU uuid (once a panic: a byte index inside a character), ids that slug alike, a 10 KB id.
        let a = run_folder("run/1", "GPU-ec48855é-e068");
        let b = run_folder("run_1", "GPU-ec48855é-e068");
        assert_ne!(a, b);
        assert!(a.starts_with("runs/run_1-GPU-ec48855_-"), "{a}");
        let long = run_folder(&"x".repeat(10_000), "GPU-1");
        assert!(long.len() < 80, "{long}");
        let (mig1, mig2) = (run_folder("r", "MIG-GPU-0f1d21b0/1/0"), run_folder("r", "MIG-GPU-0f1d21b0/2/0"));
        assert_ne!(mig1, mig2, "two MIG instances of one GPU share their first 12 characters");
        assert!(run_folder("r", "g").chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c)));
    }

    fn sample() -> (Report, Loaded) {
        use crate::analysis::tests::synthetic;
        let workers =
            vec![synthetic("mps", 1, 0, 0, 400, 1_500_000, 0), synthetic("timeslice", 1, 0, 0, 400, 1_500_000, 0)];
        let loaded = Loaded { workers, sources: 2, ..Default::default() };
        (super::super::model::build(&loaded), loaded)
    }

    #[test]
    fn a_streaming_run_gets_a_first_token_and_a_per_token_chart() {
        use crate::result::histogram::{new_latency_histogram, record, Recorded};
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::analysis::tests::synthetic("mps", 1, 0, 0, 400, 1_500_000, 0);
        let mut h = new_latency_histogram();
        (1..=500u64).for_each(|i| record(&mut h, i * 100_000));
        w.streaming = Some(crate::load::Streaming { ttft: Recorded::of(&h), tpot: Some(Recorded::of(&h)) });
        let plain = crate::analysis::tests::synthetic("timeslice", 1, 0, 0, 400, 1_500_000, 0);
        let loaded = Loaded { workers: vec![w, plain], sources: 2, ..Default::default() };
        let report = super::super::model::build(&loaded);
        let files = write_all(&report, &loaded, dir.path(), Overwrite::Refuse).unwrap();
        assert!(files.iter().any(|f| f == "ttft.svg") && files.iter().any(|f| f == "tpot.svg"), "{files:?}");
        let svg = std::fs::read_to_string(dir.path().join("ttft.svg")).unwrap();
        assert!(
            svg.contains("time to first token (ms)") && svg.contains("mps x1 (n=500)"),
            "one curve, the streamed group's"
        );
        assert!(!svg.contains("timeslice x1"));
        assert!(std::fs::read_to_string(dir.path().join("report.md")).unwrap().contains("ttft.svg"));
    }

    #[test]
    fn a_report_stopped_midway_is_replaced_and_a_whole_one_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let (report, loaded) = sample();
        // What a report killed after its charts leaves: charts, a temporary file, no report.json.
        std::fs::write(dir.path().join("latency.svg"), "old").unwrap();
        std::fs::write(dir.path().join(".report.md.tmp-4242-0"), "half").unwrap();
        std::fs::write(dir.path().join("summary.csv"), "old").unwrap();
        write_all(&report, &loaded, dir.path(), Overwrite::Refuse).unwrap();
        assert!(dir.path().join("report.json").is_file() && dir.path().join("report.html").is_file());
        assert_ne!(std::fs::read_to_string(dir.path().join("latency.svg")).unwrap(), "old");
        assert!(!dir.path().join(".report.md.tmp-4242-0").exists());
        // A whole report is not replaced without force.
        let err = write_all(&report, &loaded, dir.path(), Overwrite::Refuse).unwrap_err();
        assert!(err.problem.contains("already holds a report"), "{}", err.problem);
        // With force, an earlier report's chart folders go: none stays beside the new figures.
        std::fs::create_dir_all(dir.path().join("runs/old-run-GPU-1-00000000")).unwrap();
        std::fs::write(dir.path().join("user-notes.txt"), "mine").unwrap();
        write_all(&report, &loaded, dir.path(), Overwrite::Allow).unwrap();
        assert!(!dir.path().join("runs").exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("user-notes.txt")).unwrap(), "mine", "not sharebench's");
    }
}
