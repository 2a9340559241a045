//! The answer's words for one run (pure): per worker count, what the repeats say about MPS against
//! time-slicing and the one-process ceiling. A winner is named only where the interval across repeats excludes 1
//! (by more than 1%) and every repeat agrees; never for a count that is INVALID or flagged severe, which the same
//! line says; and where the repeats differ far more than one run's own interval, the line says so with the likely
//! cause from what was recorded.

use super::sections::RunSection;
use super::table;
use crate::analysis::repeats::Direction;
use crate::analysis::{RatioFigure, Warning, WarningKind};
use crate::units::{format_ns, three_digits};

/// Whether a warning's subject (`mps x4 repeat 2 ...`) concerns `workers` workers.
fn concerns(w: &Warning, workers: u32) -> bool {
    w.subject.split_once(" x").is_some_and(|(_, rest)| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse() == Ok(workers)
    })
}

/// Why no verdict may be drawn at a worker count: its groups are INVALID, or a severe warning concerns it.
fn no_verdict(s: &RunSection, n: u32) -> Option<String> {
    let invalid: Vec<&str> =
        s.figures.iter().filter(|f| f.key.workers == n && !f.valid()).map(|f| f.key.mode.as_str()).collect();
    let mut kinds: Vec<&str> = Vec::new();
    for w in s.raw_warnings.iter().filter(|w| w.kind.severe() && w.kind != WarningKind::Invalid && concerns(w, n)) {
        let word = match w.kind {
            WarningKind::Unverified => "MPS membership not verified",
            WarningKind::Incomplete => "workers missing or stopped early",
            WarningKind::SpreadOverGpus => "workers on several GPUs",
            WarningKind::Failed => "a phase failed",
            WarningKind::Conditions => "the GPU's or the host's conditions (see the warnings)",
            _ => "a severe warning",
        };
        if !kinds.contains(&word) {
            kinds.push(word);
        }
    }
    let mut why = Vec::new();
    if !invalid.is_empty() {
        why.push(format!("INVALID ({} too short or too few samples)", invalid.join(", ")));
    }
    if !kinds.is_empty() {
        why.push(format!("severe: {}", kinds.join(", ")));
    }
    (!why.is_empty()).then(|| format!("no verdict, {}", why.join("; ")))
}

/// Ratios whose whole interval across repeats lies within 1% of 1 are a tie in practice, whichever side of 1
/// the repeats fall on: no verdict names a winner by less.
const PRACTICAL: f64 = 0.01;

fn practically_equal(r: &RatioFigure) -> bool {
    r.spread.across.is_some_and(|i| i.low >= 1.0 - PRACTICAL && i.high <= 1.0 + PRACTICAL)
}

/// What the repeats say about MPS's throughput against time-slicing's.
fn throughput_verdict(r: &RatioFigure) -> String {
    let n = r.spread.repeats();
    if practically_equal(r) {
        return format!(
            "MPS and time-slicing equal within 1% in throughput ({} over {n} repeats)",
            table::ratio(Some(r))
        );
    }
    match r.spread.direction(1.0) {
        Direction::Above => {
            format!("MPS {} time-slicing's throughput over {n} repeats, each > 1", table::ratio(Some(r)))
        }
        Direction::Below => {
            format!("MPS {} time-slicing's throughput (lower) over {n} repeats, each < 1", table::ratio(Some(r)))
        }
        Direction::NoConsistentDifference => format!(
            "no consistent throughput difference between MPS and time-slicing ({}-{}x over {n} repeats)",
            three_digits(r.spread.min),
            three_digits(r.spread.max)
        ),
        Direction::OneRepeat => format!(
            "MPS {}x time-slicing's throughput in one repeat (no verdict: repeat the run, e.g. --repeat 3)",
            three_digits(r.spread.median)
        ),
    }
}

/// What the repeats say about MPS's p99 against time-slicing's.
fn p99_verdict(r: &RatioFigure) -> String {
    let n = r.spread.repeats();
    match r.spread.direction(1.0) {
        Direction::Below => format!("MPS lowers p99 to {} over {n} repeats, each < 1", table::ratio(Some(r))),
        Direction::Above => format!("MPS raises p99 {} over {n} repeats, each > 1", table::ratio(Some(r))),
        Direction::NoConsistentDifference => format!(
            "p99: no consistent difference ({}-{}x over {n} repeats)",
            three_digits(r.spread.min),
            three_digits(r.spread.max)
        ),
        Direction::OneRepeat => format!("p99 {}x", three_digits(r.spread.median)),
    }
}

/// Where the runs differ far more than one run's own interval says: how much, and the likely cause from what
/// was recorded.
fn spread_note(s: &RunSection, n: u32, r: &RatioFigure) -> Option<String> {
    let across = r.spread.relative_half_width()?;
    let mut within: Vec<f64> =
        r.within_run.iter().map(|e| (e.ci_high - e.ci_low) / 2.0 / e.value.abs().max(f64::MIN_POSITIVE)).collect();
    within.sort_by(f64::total_cmp);
    let within = *within.get(within.len() / 2)?;
    if !(across > 0.02 && across > 3.0 * within) {
        return None;
    }
    let at_n = || s.groups.iter().filter(|g| g.key.workers == n);
    let troubled = at_n().filter(|g| g.conditions.as_ref().is_some_and(|c| !c.problems.is_empty())).count();
    let idle = at_n()
        .filter(|g| g.command.is_some())
        .filter_map(|g| g.conditions.as_ref().and_then(|c| c.gpu_busy_pct))
        .fold(f64::INFINITY, f64::min);
    let cause = if troubled > 0 {
        format!("the GPU's conditions changed in {troubled} of the repeats (see the conditions table)")
    } else if idle < 60.0 {
        format!("the GPU was as little as {idle:.0}% busy (NVML): the tenants' own CPU side sets the pace")
    } else {
        "nothing recorded explains it (steady clocks, no other process on the GPU): the workload's own run-to-run variation; more repeats narrow the interval".to_string()
    };
    Some(format!(
        "the repeats differ far more than one run's interval says (+-{:.0}% across repeats, +-{:.1}% within one): {cause}",
        across * 100.0,
        within * 100.0
    ))
}

/// The answer for one run: per worker count, what the repeats say about MPS against time-slicing and the
/// one-process ceiling (a winner only where every repeat agrees and the interval across repeats excludes 1,
/// and never for an INVALID or severely flagged count), or, where a count ran in one mode only, its figures.
/// For groups of `n` workers whose commands streamed (LLM serving): each mode's output tokens/s and TTFT and
/// TPOT p99, medians over its repeats, so the answer speaks of tokens, not only of requests.
fn streaming_part(s: &RunSection, n: u32) -> Option<String> {
    let mut modes: Vec<&str> =
        s.groups.iter().filter(|g| g.key.workers == n && g.ttft.is_some()).map(|g| g.key.mode.as_str()).collect();
    modes.sort_unstable();
    modes.dedup();
    let median = |v: Vec<f64>| crate::analysis::repeats::Spread::of(&v).map(|s| s.median);
    let parts: Vec<String> = modes
        .iter()
        .map(|mode| {
            let of = || s.groups.iter().filter(|g| g.key.workers == n && g.key.mode == *mode);
            let tokens = median(of().filter_map(|g| g.tokens_per_s).collect());
            let ttft = median(of().filter_map(|g| g.ttft.map(|l| l.p99_ns as f64)).collect());
            let tpot = median(of().filter_map(|g| g.tpot.map(|l| l.p99_ns as f64)).collect());
            format!(
                "{mode} {} output tokens/s, TTFT p99 {}, TPOT p99 {}",
                tokens.map(three_digits).unwrap_or_else(|| "-".into()),
                ttft.map(format_ns).unwrap_or_else(|| "-".into()),
                tpot.map(format_ns).unwrap_or_else(|| "-".into())
            )
        })
        .collect();
    (!parts.is_empty()).then(|| format!("streamed: {}", parts.join(", ")))
}

pub fn headline(s: &RunSection) -> Vec<String> {
    let mut counts: Vec<u32> = s.figures.iter().map(|f| f.key.workers).collect();
    counts.sort_unstable();
    counts.dedup();
    counts
        .into_iter()
        .map(|n| {
            let figures = |mode: &str| s.figures.iter().find(|f| f.key.workers == n && f.key.mode == mode);
            let comparison = s.comparisons.iter().find(|c| c.workers == n);
            let mut parts = Vec::new();
            let blocked = no_verdict(s, n);
            if let Some(why) = &blocked {
                parts.push(why.clone());
            }
            if let Some(c) = comparison {
                match (&blocked, &c.mps_over_timeslice) {
                    (Some(_), Some(r)) => parts.push(format!(
                        "measured MPS {} time-slicing's throughput{}",
                        table::ratio(Some(r)),
                        table::over_repeats(r.spread.repeats())
                    )),
                    (None, Some(r)) => {
                        parts.push(throughput_verdict(r));
                        if let Some(p99) = &c.p99_mps_over_timeslice {
                            parts.push(p99_verdict(p99));
                        }
                    }
                    _ => {}
                }
                if let (None, Some(r)) = (&blocked, &c.mps_over_streams) {
                    parts.push(match r.spread.direction(1.0) {
                        _ if practically_equal(r) => {
                            format!("MPS reaches the one-process ceiling (within 1%: {})", table::ratio(Some(r)))
                        }
                        Direction::Below => format!("MPS at {} of the one-process ceiling", table::ratio(Some(r))),
                        Direction::Above => format!("MPS above the one-process ceiling ({})", table::ratio(Some(r))),
                        _ => {
                            format!("MPS not distinguishable from the one-process ceiling ({})", table::ratio(Some(r)))
                        }
                    });
                }
                match figures("timeslice").map(|ts| ts.overlap_fraction.as_ref().map(|o| o.max)) {
                    Some(Some(0.0)) => parts.push("time-slicing never overlapped".to_string()),
                    Some(Some(f)) => parts.push(format!("time-slicing overlapped up to {:.1}%", f * 100.0)),
                    Some(None) => parts.push("overlap not measurable (a foreign command's kernels)".to_string()),
                    None => {}
                }
                if let Some(note) = c.mps_over_timeslice.as_ref().and_then(|r| spread_note(s, n, r)) {
                    parts.push(note);
                }
            }
            if comparison.is_none() {
                parts.extend(s.figures.iter().filter(|f| f.key.workers == n).map(|f| {
                    let unit = table::Unit::of(&s.repeats_of(f)).name();
                    format!(
                        "{} {} {unit}/s{}, p99 {}",
                        f.key.mode,
                        table::spread(&f.throughput, three_digits),
                        table::over_repeats(f.repeats.len()),
                        f.p99_ns.as_ref().map(|p| table::spread(p, format_ns)).unwrap_or_else(|| "-".into())
                    )
                }));
            }
            if let Some(streamed) = streaming_part(s, n) {
                parts.push(streamed);
            }
            let who = if n == 1 { "1 worker".to_string() } else { format!("{n} workers") };
            format!("{}, {who}: {}", s.workload, parts.join("; "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::Report;
    use super::super::sections::sections;
    use crate::analysis::tests::synthetic;
    use crate::load::Loaded;

    fn report(workers: Vec<crate::load::Worker>) -> Report {
        super::super::model::build(&Loaded { workers, sources: 1, ..Default::default() })
    }

    /// Repeats of a 2-worker study: time-slicing alternates 1 ms kernels (400 each); MPS and the streams ceiling
    /// run theirs side by side, taking `mps_ns[r]` in repeat r. Valid: over 0.5 s and 800 samples a mode.
    fn study(mps_ns: &[u64]) -> Vec<crate::load::Worker> {
        use crate::analysis::tests::repeat_of;
        let mut ws = Vec::new();
        for (r, &d) in mps_ns.iter().enumerate() {
            let r = r as u32;
            ws.push(repeat_of(synthetic("timeslice", 2, 0, 0, 400, 1_000_000, 1_000_000), r));
            ws.push(repeat_of(synthetic("timeslice", 2, 1, 1_000_000, 400, 1_000_000, 1_000_000), r));
            for mode in ["mps", "streams"] {
                ws.push(repeat_of(synthetic(mode, 2, 0, 0, 400, d, 0), r));
                ws.push(repeat_of(synthetic(mode, 2, 1, 0, 400, d, 0), r));
            }
        }
        ws
    }

    fn answer(workers: Vec<crate::load::Worker>) -> String {
        let r = report(workers);
        let s = sections(&r);
        assert_eq!(s.len(), 1);
        s[0].headline.join("\n")
    }

    #[test]
    fn a_winner_is_named_where_every_repeat_agrees_and_the_interval_excludes_one() {
        let line = answer(study(&[1_500_000, 1_480_000, 1_520_000]));
        assert!(line.contains("2 workers: MPS 1.33x ["), "{line}");
        assert!(line.contains("] time-slicing's throughput over 3 repeats, each > 1"), "{line}");
        assert!(line.contains("MPS raises p99"), "1.5 ms side by side against 1 ms alone: {line}");
        assert!(line.contains("MPS reaches the one-process ceiling (within 1%"), "{line}");
        assert!(line.contains("time-slicing never overlapped"), "{line}");
    }

    #[test]
    fn repeats_that_disagree_give_no_consistent_difference_and_one_repeat_gives_no_verdict() {
        // MPS / time-slicing 1.33x, 0.8x, 1.54x: no verdict either way, with the spread.
        let line = answer(study(&[1_500_000, 2_500_000, 1_300_000]));
        assert!(
            line.contains(
                "no consistent throughput difference between MPS and time-slicing (0.800-1.54x over 3 repeats)"
            ),
            "{line}"
        );
        assert!(!line.contains("each > 1"), "{line}");
        let line = answer(study(&[1_500_000]));
        assert!(line.contains("MPS 1.33x time-slicing's throughput in one repeat (no verdict"), "{line}");
    }

    #[test]
    fn no_winner_is_named_for_a_count_that_is_invalid_or_flagged_severe() {
        // A worker missing from one MPS repeat: the line says so, and names no winner.
        let mut ws = study(&[1_500_000, 1_480_000, 1_520_000]);
        let gone = ws.iter().position(|w| w.mode == "mps" && w.config.repeat == 1).unwrap();
        ws.remove(gone);
        let line = answer(ws);
        assert!(
            line.contains("2 workers: no verdict, severe: workers missing or stopped early; measured MPS"),
            "{line}"
        );
        assert!(!line.contains("each > 1"), "{line}");
        // 40 kernels of 1 ms a worker: too short to count.
        let line = answer(vec![
            synthetic("timeslice", 2, 0, 0, 40, 1_000_000, 1_000_000),
            synthetic("timeslice", 2, 1, 1_000_000, 40, 1_000_000, 1_000_000),
            synthetic("mps", 2, 0, 0, 40, 1_000_000, 0),
            synthetic("mps", 2, 1, 0, 40, 1_000_000, 0),
        ]);
        assert!(line.contains("no verdict, INVALID (mps, timeslice too short or too few samples)"), "{line}");
    }

    #[test]
    fn a_single_mode_is_summarised_by_its_own_figures() {
        let r = report(vec![synthetic("mps", 1, 0, 0, 1000, 1_000_000, 0)]);
        let line = &sections(&r)[0].headline[0];
        assert!(line.contains("1 worker: mps 1000 kernels/s in one repeat, p99 1.01 ms"), "{line}");
    }
}
