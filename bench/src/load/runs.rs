//! Which loaded results belong to one run. A run id is only a label (a Job's `sharebench.dev/run` label is the
//! same for every Job made from one manifest; runs of older plans shared theirs), so results that share a run id
//! are one run only where they could be: the same worker of the same run cannot appear twice with different
//! start times, and a run's workers measure within one stretch of time. Results that share an id but not a run
//! are kept apart, each set renamed `ID@<UTC start>` with a note naming the sources; a result read twice (a file
//! and a log of the same worker) is a duplicate and dropped. Separate runs of one id that ran the same
//! configuration (the same Job applied again, one Job per repeat) are repeats of one run: they keep the id, are
//! numbered as repeats in the order they ran, and a note says so. Pure.

use super::{Exclusion, Worker};
use std::collections::{BTreeMap, BTreeSet};

/// Workers of one run id that start more than this after the previous ones finished belong to another run
/// (a compare's phases follow each other within seconds).
pub const RUN_GAP_NS: u64 = 10 * 60 * 1_000_000_000;

/// What identifies one worker (lane) within one run: its mode, the run's worker count, its index (indices
/// are unique across the GPUs of a multi-GPU run, and across the lanes of the streams ceiling) and its repeat.
type Seat = (String, u32, u32, u32);

fn seat(w: &Worker) -> Seat {
    (w.mode.clone(), w.config.workers, w.worker, w.config.repeat)
}

/// What a worker was asked to do and on which GPU, apart from where it wrote, when, and which repeat it was: two
/// runs of one id whose workers were asked the same on the same GPU are repeats of one configuration.
fn configuration(w: &Worker) -> String {
    let mut config = w.config.clone();
    config.command_line.clear();
    config.repeat = 0;
    let asked = serde_json::to_string(&config).unwrap_or_default();
    format!("{} {} {} {:?} {asked}", w.gpu.uuid, w.mode, w.worker, w.group)
}

/// Drops a second copy of the same worker of the same run (same seat, same start), keeping the first.
pub fn drop_duplicates(workers: &mut Vec<Worker>, excluded: &mut Vec<Exclusion>) {
    let mut seen: BTreeMap<(String, Seat, u64), String> = BTreeMap::new();
    workers.retain(|w| {
        let key = (w.run_id.clone(), seat(w), w.started_unix_ns);
        match seen.get(&key) {
            Some(first) => {
                excluded.push(Exclusion {
                    source: w.source.clone(),
                    reason: format!(
                        "duplicate of {first}: run {} mode {} worker {} appears twice",
                        w.run_id, w.mode, w.worker
                    ),
                });
                false
            }
            None => {
                seen.insert(key, w.source.clone());
                true
            }
        }
    });
}

/// Splits run ids shared by separate runs; returns one note per split id.
pub fn separate_runs(workers: &mut [Worker]) -> Vec<String> {
    let mut by_id: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, w) in workers.iter().enumerate() {
        by_id.entry(w.run_id.clone()).or_default().push(i);
    }
    let mut notes = Vec::new();
    for (id, mut members) in by_id {
        members.sort_by_key(|&i| (workers[i].started_unix_ns, i));
        let runs = split(workers, &members);
        if runs.len() < 2 {
            continue;
        }
        let config_of =
            |run: &Vec<usize>| -> BTreeSet<String> { run.iter().map(|&i| configuration(&workers[i])).collect() };
        if runs.iter().all(|run| config_of(run) == config_of(&runs[0])) {
            notes.push(number_as_repeats(workers, &id, &runs));
            continue;
        }
        let mut names = Vec::new();
        let mut sources = Vec::new();
        for run in &runs {
            let start = workers[run[0]].started_unix_ns;
            let mut name = format!("{id}@{}", utc_stamp(start));
            if names.contains(&name) {
                name = format!("{name}-{}", names.len() + 1);
            }
            sources.push(workers[run[0]].source.clone());
            for &i in run {
                workers[i].run_id = name.clone();
            }
            names.push(name);
        }
        notes.push(format!(
            "run id {id} names {} separate runs (first results: {}): reported apart as {}",
            runs.len(),
            sources.join(", "),
            names.join(", ")
        ));
    }
    notes
}

/// Numbers separate runs of one configuration as consecutive repeats of one run (each keeps its own repeat
/// numbers, shifted past the previous run's); returns the note that says so.
fn number_as_repeats(workers: &mut [Worker], id: &str, runs: &[Vec<usize>]) -> String {
    let mut next = 0;
    for run in runs {
        let own = run.iter().map(|&i| workers[i].config.repeat).max().unwrap_or(0) + 1;
        for &i in run {
            workers[i].config.repeat += next;
        }
        next += own;
    }
    format!(
        "run id {id}: {} separately run sets of workers (e.g. one Job per repeat) of one configuration, combined as repeats 1-{next} of one run",
        runs.len()
    )
}

/// Members (sorted by start) cut into runs: a new run where a seat repeats or after a gap.
fn split(workers: &[Worker], members: &[usize]) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let (mut seats, mut end) = (BTreeSet::new(), 0u64);
    for &i in members {
        let w = &workers[i];
        let fresh = runs.is_empty() || seats.contains(&seat(w)) || w.started_unix_ns > end.saturating_add(RUN_GAP_NS);
        if fresh {
            runs.push(Vec::new());
            seats.clear();
            end = 0;
        }
        seats.insert(seat(w));
        end = end.max(w.finished_unix_ns);
        runs.last_mut().expect("a run was started").push(i);
    }
    runs
}

/// `20261124T101503Z` for a Unix time in ns (UTC, proleptic Gregorian calendar).
pub fn utc_stamp(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::worker_at;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_566_772_000_000_000), "20261125T003252Z");
        assert_eq!(utc_stamp(951_782_400_000_000_000), "20000229T000000Z");
    }

    #[test]
    fn one_run_stays_one_run() {
        // A compare: time-slicing, then MPS a few seconds later, four workers each.
        let mut ws: Vec<Worker> = (0..4)
            .map(|i| worker_at("compare-1", "timeslice", 4, i, 100))
            .chain((0..4).map(|i| worker_at("compare-1", "mps", 4, i, 110)))
            .collect();
        assert!(separate_runs(&mut ws).is_empty());
        assert!(ws.iter().all(|w| w.run_id == "compare-1"));
    }

    #[test]
    fn two_invocations_sharing_an_id_are_kept_apart_and_named() {
        // The same plan point id from two machines a day apart, four workers each, with different loads: never
        // "8 of 4 workers".
        let mut ws: Vec<Worker> = (0..4)
            .map(|i| worker_at("plan-inference-mps-4", "mps", 4, i, 1_795_500_000))
            .chain((0..4).map(|i| {
                let mut w = worker_at("plan-inference-mps-4", "mps", 4, i, 1_795_586_400);
                w.config.kernels = Some(77);
                w
            }))
            .collect();
        let notes = separate_runs(&mut ws);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("names 2 separate runs"), "{}", notes[0]);
        let ids: BTreeSet<&str> = ws.iter().map(|w| w.run_id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with("plan-inference-mps-4@2026")), "{ids:?}");
    }

    #[test]
    fn a_rerun_of_another_configuration_right_after_is_told_apart_by_its_repeated_workers() {
        let mut ws: Vec<Worker> = (0..2)
            .map(|i| worker_at("experiment-1", "mps", 2, i, 1000))
            .chain((0..2).map(|i| {
                let mut w = worker_at("experiment-1", "mps", 2, i, 1030);
                w.config.duration_s = Some(3.0);
                w
            }))
            .collect();
        assert_eq!(separate_runs(&mut ws).len(), 1);
        assert_ne!(ws[0].run_id, ws[2].run_id);
        assert_eq!(ws[0].run_id, ws[1].run_id);
    }

    #[test]
    fn jobs_of_one_configuration_run_apart_are_combined_as_repeats() {
        // Three Jobs of one manifest, an hour apart (one Job per repeat, or the same Job applied again): one run
        // with repeats 0, 1, 2, in the order they ran; a compare's own repeats keep their numbers, shifted.
        let mut ws: Vec<Worker> = [1_000u64, 4_600, 8_200]
            .iter()
            .flat_map(|&start| (0..2).map(move |i| worker_at("sharebench-mps", "mps", 2, i, start)))
            .collect();
        ws[5].config.command_line = vec!["other".into(), "paths".into()];
        let notes = separate_runs(&mut ws);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("3 separately run sets") && notes[0].contains("repeats 1-3"), "{}", notes[0]);
        assert!(ws.iter().all(|w| w.run_id == "sharebench-mps"));
        let repeats: Vec<u32> = ws.iter().map(|w| w.config.repeat).collect();
        assert_eq!(repeats, [0, 0, 1, 1, 2, 2]);
        // Within one run the same seat in two repeats is not a second run.
        let mut compare: Vec<Worker> = (0..3u32)
            .map(|r| {
                let mut w = worker_at("compare-1", "mps", 1, 0, 100 + r as u64);
                w.config.repeat = r;
                w
            })
            .collect();
        assert!(separate_runs(&mut compare).is_empty());
    }

    #[test]
    fn the_same_result_twice_is_a_duplicate_not_a_second_run() {
        let mut ws = vec![worker_at("r", "mps", 1, 0, 5), worker_at("r", "mps", 1, 0, 5)];
        let mut excluded = Vec::new();
        drop_duplicates(&mut ws, &mut excluded);
        assert_eq!((ws.len(), excluded.len()), (1, 1));
        assert!(excluded[0].reason.contains("duplicate of"));
    }
}
