//! Loading worker results, for reports, plans and analysis (a layer below `analysis/`, above `result/`): from
//! directories (searched recursively, `files`), files (plain or gzip-compressed), or `-` for stdin carrying
//! results mixed with other log lines (what `kubectl logs` of a Job prints, with or without `--prefix`). Every
//! record is checked for plausibility (`plausibility`), results that share a run id but not a run are kept apart
//! (`runs`). Every problem names its source; with `keep_going` bad sources are excluded and listed instead.

pub mod files;
pub mod lane;
pub mod plausibility;
pub mod runs;
pub mod studies;

use crate::error::{Error, Result};
use crate::result::histogram;
use crate::result::records;
use crate::result::telemetry::Telemetry;
use crate::result::tenant::TenantReport;
use crate::result::{GpuIdentity, HostIdentity, RunConfig, RunStatus, SharingVerdict, WorkerResult};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The start of every result line.
const MARKER: &str = "{\"format\":\"sharebench-result\"";

/// One lane of one worker result, decoded.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Where it came from: `path` or `path:line` or `stdin:line`.
    pub source: String,
    pub run_id: String,
    pub mode: String,
    pub group: Option<String>,
    pub gpu: GpuIdentity,
    pub host: HostIdentity,
    pub config: RunConfig,
    pub verdict: SharingVerdict,
    pub status: RunStatus,
    pub worker: u32,
    /// The worker's measuring window (wall clock, Unix ns).
    pub started_unix_ns: u64,
    pub finished_unix_ns: u64,
    /// Its latency histogram, as the buckets it recorded ([`histogram::Recorded`]: compact in memory).
    pub histogram: histogram::Recorded,
    /// Its kernel records (or a command's requests), with their extents and totals.
    pub records: lane::Records,
    /// Whether the records carry device times; a foreign command's requests have host times only.
    pub device_stamps: bool,
    /// The GPU telemetry its process sampled (worker 0; on its first lane only).
    pub telemetry: Option<Telemetry>,
    /// The foreign command it ran as its workload, and how that went.
    pub tenant: Option<TenantReport>,
    /// Its process's host conditions over the window (cgroup throttling, memory, load).
    pub host_conditions: Option<crate::cgroup::HostConditions>,
    /// Its command's time to first token and time per output token, where it streamed (`ttft_ms=`).
    pub streaming: Option<Streaming>,
}

/// A streaming command's first-token and per-token times over the window.
#[derive(Debug, Clone)]
pub struct Streaming {
    pub ttft: histogram::Recorded,
    /// `None` where no request reported 2 tokens or more.
    pub tpot: Option<histogram::Recorded>,
}

/// The streaming histograms of a command's report; an error names the one that does not decode.
fn streaming(tenant: Option<&TenantReport>) -> std::result::Result<Option<Streaming>, String> {
    let Some(ttft) = tenant.and_then(|t| t.ttft_histogram.as_deref()) else { return Ok(None) };
    let decode = |what: &str, text: &str| {
        histogram::from_base64(text).map(|h| histogram::Recorded::of(&h)).map_err(|e| format!("{what} histogram: {e}"))
    };
    let tpot = match tenant.and_then(|t| t.tpot_histogram.as_deref()) {
        Some(text) => Some(decode("tenant.tpot", text)?),
        None => None,
    };
    Ok(Some(Streaming { ttft: decode("tenant.ttft", ttft)?, tpot }))
}

/// Which clock a set of workers is put on one timeline with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// `%globaltimer`, one clock for every context on the GPU: kernels as they ran on the device.
    Device,
    /// The hosts' wall clocks: requests from their start to their completion (foreign commands).
    Host,
}

impl Clock {
    /// The device clock when every worker has device stamps, else the host clock.
    pub fn common<'a>(mut workers: impl Iterator<Item = &'a Worker>) -> Clock {
        match workers.all(|w| w.device_stamps) {
            true => Clock::Device,
            false => Clock::Host,
        }
    }
}

impl Worker {
    /// A foreign command that reported no request: a neighbour whose own latency is unknown.
    pub fn neighbour_only(&self) -> bool {
        self.tenant.as_ref().is_some_and(TenantReport::neighbour_only)
    }

    /// The pids that are this worker's own on the GPU, as it sees them: itself and its command's GPU processes.
    pub fn own_pids(&self) -> Vec<u32> {
        let tenant = self.tenant.iter().flat_map(TenantReport::gpu_pids);
        std::iter::once(self.host.pid).chain(tenant).collect()
    }
}

/// A source left out of the report, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub workers: Vec<Worker>,
    pub excluded: Vec<Exclusion>,
    pub sources: usize,
    /// What loading did that a reader should know: outputs skipped, links not followed, runs kept apart.
    pub notes: Vec<String>,
    /// The plans found in the inputs: their points' runs are listed under them.
    pub plans: Vec<studies::PlanFile>,
}

/// The sharing modes a worker can record (`sharebench run --mode`).
pub const MODES: [&str; 4] = ["timeslice", "mps", "streams", "unverified"];

/// Decodes the lanes of one result.
fn decode(result: WorkerResult, source: &str) -> std::result::Result<Vec<Worker>, String> {
    if !MODES.contains(&result.mode.as_str()) {
        let shown: String = result.mode.chars().take(40).collect();
        return Err(format!("mode {shown:?} is not one sharebench records ({})", MODES.join(", ")));
    }
    let mut telemetry = result.telemetry.clone();
    let streamed = streaming(result.tenant.as_ref())?;
    result
        .lanes
        .into_iter()
        .map(|lane| {
            let histogram =
                histogram::from_base64(&lane.latency_histogram).map_err(|e| format!("worker {}: {e}", lane.worker))?;
            let records = records::unpack(&lane.records).map_err(|e| format!("worker {}: {e}", lane.worker))?;
            let bounds = plausibility::Bounds {
                host_base_unix_ns: lane.records.host_base_unix_ns,
                started_unix_ns: result.started_unix_ns,
                finished_unix_ns: result.finished_unix_ns,
                gpu_sm_count: result.gpu.sm_count,
                device_stamps: lane.device_stamps,
            };
            if let Some((index, why)) = plausibility::first_implausible(&records, &bounds) {
                return Err(format!("worker {}, kernel record {index}: {why} (a corrupted record)", lane.worker));
            }
            let max_ns = if histogram.is_empty() { 0 } else { histogram.max() };
            if let Some(why) =
                plausibility::histogram_mismatch(&records, histogram.len(), max_ns, result.status.complete)
            {
                return Err(format!("worker {}: {why} (a corrupted result)", lane.worker));
            }
            Ok(Worker {
                source: source.to_string(),
                run_id: result.run_id.clone(),
                mode: result.mode.clone(),
                group: result.group.clone(),
                gpu: result.gpu.clone(),
                host: result.host.clone(),
                config: result.config.clone(),
                verdict: result.sharing.verdict,
                status: result.status.clone(),
                worker: lane.worker,
                started_unix_ns: result.started_unix_ns,
                finished_unix_ns: result.finished_unix_ns,
                histogram: histogram::Recorded::of(&histogram),
                records: lane::Records::new(records, lane.records.host_base_unix_ns),
                device_stamps: lane.device_stamps,
                telemetry: telemetry.take(),
                tenant: result.tenant.clone(),
                host_conditions: result.host_conditions.clone(),
                streaming: streamed.clone(),
            })
        })
        .collect()
}

/// The result documents in a log stream, each without the log prefix before it (e.g. `kubectl logs --prefix`).
pub fn result_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| line.find(MARKER).map(|at| line[at..].trim_end()))
}

/// Picks results out of a log stream, as `sharebench report -` does with stdin.
pub fn parse_log_text(text: &str) -> (Vec<Worker>, Vec<Exclusion>) {
    parse_text(text, "stdin", false)
}

/// Picks results out of text: whole-JSON files, JSON lines, or log lines with a prefix before the result.
fn parse_text(text: &str, source: &str, strict_lines: bool) -> (Vec<Worker>, Vec<Exclusion>) {
    let (mut workers, mut excluded) = (Vec::new(), Vec::new());
    let mut found = 0usize;
    for (n, line) in text.lines().enumerate() {
        let Some(at) = line.find(MARKER) else {
            if strict_lines && !line.trim().is_empty() {
                excluded.push(Exclusion {
                    source: format!("{source}:{}", n + 1),
                    reason: "not a sharebench result line".into(),
                });
            }
            continue;
        };
        found += 1;
        let here = format!("{source}:{}", n + 1);
        match WorkerResult::from_json(line[at..].trim_end()).and_then(|r| decode(r, &here)) {
            Ok(mut w) => workers.append(&mut w),
            Err(reason) => excluded.push(Exclusion { source: here, reason }),
        }
    }
    if found == 0 && !strict_lines {
        // A pretty-printed result spans lines; try the whole text once.
        if text.contains("\"sharebench-result\"") {
            match WorkerResult::from_json(text).and_then(|r| decode(r, source)) {
                Ok(mut w) => workers.append(&mut w),
                Err(reason) => excluded.push(Exclusion { source: source.to_string(), reason }),
            }
        }
    }
    (workers, excluded)
}

/// What a reader of an exclusion needs to know about the files `report` reads.
const WHAT_A_RESULT_IS: &str = "a result is the JSON document one worker writes (`sharebench run --out`, or a line \
     starting {\"format\":\"sharebench-result\" in its output), as compare and plan keep them in results/";

fn load_file(path: &Path) -> (Vec<Worker>, Vec<Exclusion>) {
    let source = path.display().to_string();
    match files::read_text(path) {
        Err(e) => (vec![], vec![Exclusion { source, reason: format!("cannot read: {e}") }]),
        Ok(text) => {
            let (workers, mut excluded) = parse_text(&text, &source, true);
            if workers.is_empty() && excluded.is_empty() {
                excluded.push(Exclusion {
                    source,
                    reason: format!("holds no sharebench result (truncated or empty?); {WHAT_A_RESULT_IS}"),
                });
            } else if workers.is_empty() && excluded.iter().all(|e| e.reason == "not a sharebench result line") {
                let (w, ex) = parse_text(&text, &source, false);
                return if w.is_empty() && ex.is_empty() {
                    (
                        vec![],
                        vec![Exclusion { source, reason: format!("holds no sharebench result; {WHAT_A_RESULT_IS}") }],
                    )
                } else {
                    (w, ex)
                };
            }
            // Lines that are not results inside a results file are tolerated (e.g. a log saved next to them).
            excluded.retain(|e| e.reason != "not a sharebench result line");
            (workers, excluded)
        }
    }
}

/// Loads every input. Fails on the first bad source unless `keep_going`.
pub fn load(inputs: &[String], keep_going: bool) -> Result<Loaded> {
    let mut files = Vec::new();
    let mut loaded = Loaded::default();
    let mut own_outputs = 0;
    let mut stdin_text = None;
    for input in inputs {
        if input == "-" {
            let capped = files::read_capped(std::io::stdin().lock())
                .map_err(|e| Error::new(format!("cannot read stdin: {e}")))?;
            loaded.excluded.extend(capped.too_long.iter().map(|n| Exclusion {
                source: format!("stdin:{n}"),
                reason: format!("a line longer than {} MiB: skipped", files::MAX_LINE_BYTES >> 20),
            }));
            stdin_text = Some(capped.text);
            continue;
        }
        let path = PathBuf::from(input);
        if path.is_dir() {
            let walk = files::walk(&path).map_err(|e| Error::io("read directory", &path, e))?;
            own_outputs += walk.own_outputs;
            loaded.plans.extend(walk.plans.iter().filter_map(|p| read_plan(p)));
            loaded.notes.extend(walk.loops);
            loaded.excluded.extend(walk.unreadable.into_iter().map(|(source, reason)| Exclusion { source, reason }));
            if walk.files.is_empty() {
                return Err(Error::new(format!("{input}: no result files (*.json, *.json.gz) in this directory"))
                    .fix("point sharebench report at a run directory, result files, or - for kubectl logs on stdin"));
            }
            files.extend(walk.files);
        } else if path.exists() {
            files.push(path);
        } else {
            return Err(Error::new(format!("{input}: no such file or directory")));
        }
    }
    loaded.sources = files.len() + stdin_text.is_some() as usize;
    let parsed = crate::parallel::map(&files, |p| load_file(p));
    for (workers, excluded) in parsed {
        loaded.workers.extend(workers);
        loaded.excluded.extend(excluded);
    }
    if let Some(text) = stdin_text {
        let (workers, excluded) = parse_text(&text, "stdin", false);
        if workers.is_empty() && excluded.is_empty() {
            return Err(Error::new("stdin holds no sharebench result lines")
                .fix("pipe the workers' output, e.g. kubectl logs -l job-name=<job> --tail=-1 | sharebench report -"));
        }
        loaded.workers.extend(workers);
        loaded.excluded.extend(excluded);
    }
    if own_outputs > 0 {
        loaded.notes.push(format!("skipped {own_outputs} of sharebench's own outputs (reports, plans, compare and calibration summaries, patches)"));
    }
    runs::drop_duplicates(&mut loaded.workers, &mut loaded.excluded);
    loaded.notes.extend(runs::separate_runs(&mut loaded.workers));
    if !keep_going {
        if let Some(first) = loaded.excluded.first() {
            let more = loaded.excluded.len() - 1;
            let others = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            return Err(Error::new(format!("{}: {}{others}", first.source, first.reason))
                .fix("fix or remove that input, or pass --keep-going to report the valid results and list the rest as excluded"));
        }
    }
    if loaded.workers.is_empty() {
        let listed: Vec<String> =
            loaded.excluded.iter().take(3).map(|e| format!("{}: {}", e.source, e.reason)).collect();
        let more = loaded.excluded.len().saturating_sub(3);
        let mut err = Error::new(match loaded.excluded.len() {
            0 => "no valid results to report".to_string(),
            n => format!("no valid results to report: all {n} input(s) were excluded"),
        });
        if !listed.is_empty() {
            let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            err = err.observed(format!("{}{more}", listed.join("; ")));
        }
        return Err(
            err.fix("point report at worker results: a run directory's results/, result files, or - for kubectl logs")
        );
    }
    Ok(loaded)
}

/// A `plan.json` and its directory, if it reads as JSON.
fn read_plan(path: &Path) -> Option<studies::PlanFile> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(studies::PlanFile { dir: path.parent()?.display().to_string(), json: serde_json::from_str(&text).ok()? })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::result::tests::sample_result;

    /// Worker `index` of `workers` of run `run_id` in `mode`, measuring 10 s from `start_s` (Unix seconds).
    pub fn worker_at(run_id: &str, mode: &str, workers: u32, index: u32, start_s: u64) -> Worker {
        let r = sample_result();
        let mut w = decode(r, &format!("{run_id}-{mode}-{index}@{start_s}.json")).unwrap().remove(0);
        w.run_id = run_id.into();
        w.mode = mode.into();
        w.config.workers = workers;
        w.worker = index;
        w.started_unix_ns = start_s * 1_000_000_000;
        w.finished_unix_ns = (start_s + 10) * 1_000_000_000;
        w
    }

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    #[test]
    fn results_are_picked_out_of_kubectl_logs() {
        let line = sample_result().to_json_line();
        let logs = format!("[pod/sb-0] sharebench run: mps worker 0 ...\n[pod/sb-0] {line}\nunrelated\n");
        let (w, ex) = parse_text(&logs, "stdin", false);
        assert_eq!((w.len(), ex.len()), (1, 0));
        assert_eq!(w[0].records.len(), 1);
        assert_eq!(w[0].source, "stdin:2");
    }

    #[test]
    fn a_mode_sharebench_never_records_is_refused() {
        let mut r = sample_result();
        r.mode = "<script>".into();
        let err = decode(r, "w.json").unwrap_err();
        assert!(err.contains("mode \"<script>\" is not one sharebench records"), "{err}");
    }

    #[test]
    fn bad_files_are_named_and_keep_going_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "w0.json", &sample_result().to_json_line());
        let mut other = sample_result();
        other.lanes[0].worker = 1;
        write(dir.path(), "w1.json", &other.to_json_line());
        let line = other.to_json_line();
        let truncated = write(dir.path(), "w2.json", &line[..line.len() / 2]);
        let err = load(&[dir.path().display().to_string()], false).unwrap_err();
        assert!(err.problem.starts_with(&format!("{truncated}:1: not valid JSON")), "{}", err.problem);
        let loaded = load(&[dir.path().display().to_string()], true).unwrap();
        assert_eq!(loaded.workers.len(), 2);
        assert_eq!(loaded.excluded.len(), 1);
        let again = load(&[good.clone(), good], true).unwrap();
        assert_eq!(again.workers.len(), 1);
        assert!(again.excluded[0].reason.contains("duplicate of"));
    }

    #[test]
    fn empty_and_missing_inputs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&[dir.path().display().to_string()], false).unwrap_err().problem.contains("no result files"));
        assert!(load(&["/nonexistent".into()], false).unwrap_err().problem.contains("no such file"));
        let empty = write(dir.path(), "e.json", "");
        assert!(load(&[empty], false).unwrap_err().problem.contains("holds no sharebench result"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_log_text_never_panics(text in ".{0,400}") {
            let _ = parse_log_text(&text);
        }

        #[test]
        fn corrupted_results_never_panic_and_are_never_dropped_silently(cut in 1usize..2000, byte in 0usize..2000, with in proptest::char::any()) {
            let line = sample_result().to_json_line();
            let mut chars: Vec<char> = line.chars().collect();
            let at = byte % chars.len();
            chars[at] = with;
            let mutated: String = chars.into_iter().collect();
            // A changed character may still leave a valid result (a digit for a digit): either way the line is
            // accounted for, as a worker or as an exclusion with its reason, never lost.
            let (workers, excluded) = parse_log_text(&mutated);
            if mutated.starts_with(MARKER) && !mutated.contains('\n') {
                proptest::prop_assert_eq!(workers.len() + excluded.len(), 1);
                proptest::prop_assert!(excluded.iter().all(|e| !e.reason.is_empty()));
            }
            // A cut line is always an error.
            let cut = cut.min(line.len() - 1);
            let (workers, excluded) = parse_log_text(&line[..cut]);
            if line[..cut].starts_with(MARKER) {
                proptest::prop_assert!(workers.is_empty());
                proptest::prop_assert_eq!(excluded.len(), 1);
            }
        }
    }

    #[test]
    fn pretty_printed_results_load() {
        let dir = tempfile::tempdir().unwrap();
        let pretty = serde_json::to_string_pretty(&sample_result()).unwrap();
        let p = write(dir.path(), "pretty.json", &pretty);
        assert_eq!(load(&[p], false).unwrap().workers.len(), 1);
    }
}
