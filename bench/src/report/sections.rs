//! The report as a reader meets it: the answer first, in words and numbers, then one section per run and GPU
//! with its own table, comparisons, warnings and charts. Builds views of a [`Report`] for the writers (terminal,
//! Markdown, HTML), so all three say the same thing in the same order. Pure.

use super::model::{describe_workload, Report};
use super::table;
use crate::analysis::isolation::IsolationVerdict;
use crate::analysis::{Comparison, GroupFigures, GroupSummary, Warning, WarningKind};
use crate::load::studies::Study;

/// Warnings of one kind, with the groups they concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningGroup {
    pub kind: WarningKind,
    pub subjects: Vec<String>,
}

impl WarningGroup {
    /// `incomplete: figures cover what was recorded: mps x4 (3 reported, 3 complete), ...`
    pub fn line(&self) -> String {
        let subjects: Vec<&str> = self.subjects.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        if subjects.is_empty() {
            self.kind.title().to_string()
        } else {
            format!("{}: {}", self.kind.title(), subjects.join(", "))
        }
    }

    /// The group for a terminal: its title, then each distinct subject on a line of its own where one line
    /// would run past [`LINE_WIDTH`].
    pub fn lines(&self) -> Vec<String> {
        let line = self.line();
        if line.chars().count() <= LINE_WIDTH {
            return vec![line];
        }
        let mut subjects: Vec<&str> = self.subjects.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        subjects.dedup();
        let tail = common_tail(&subjects);
        let mut out = vec![format!("{}:", self.kind.title())];
        for s in &subjects {
            out.push(format!("  - {}", s.strip_suffix(tail.unwrap_or("")).unwrap_or(s).trim_end_matches([':', ' '])));
        }
        if let Some(tail) = tail {
            out.push(format!("  each: {tail}"));
        }
        out
    }
}

/// What several subjects end with alike (a cause's consequence and fix), from a `: ` on, where that is long
/// enough to be worth saying once.
fn common_tail<'s>(subjects: &[&'s str]) -> Option<&'s str> {
    let (first, rest) = subjects.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut len = first.len();
    for s in rest {
        let same = first.bytes().rev().zip(s.bytes().rev()).take_while(|(a, b)| a == b).count();
        len = len.min(same);
    }
    let tail = &first[first.len() - len..];
    let from = tail.find(": ")? + 2;
    let tail = &tail[from..];
    (tail.len() >= 40 && first.is_char_boundary(first.len() - tail.len())).then_some(tail)
}

/// A plan and the runs of its points, or (`study: None`) the runs of no plan.
pub struct StudyBlock<'r, 's, 'a> {
    pub study: Option<&'r Study>,
    pub runs: Vec<&'s RunSection<'a>>,
}

/// The runs in study order: each plan with its points' runs (in the order given), then the runs of no plan.
pub fn by_study<'r, 's, 'a>(studies: &'r [Study], runs: &'s [RunSection<'a>]) -> Vec<StudyBlock<'r, 's, 'a>> {
    let of = |s: &RunSection| studies.iter().position(|st| st.holds(s.source));
    let mut blocks: Vec<StudyBlock> = studies
        .iter()
        .enumerate()
        .map(|(i, st)| StudyBlock { study: Some(st), runs: runs.iter().filter(|s| of(s) == Some(i)).collect() })
        .filter(|b| !b.runs.is_empty())
        .collect();
    let loose: Vec<&RunSection> = runs.iter().filter(|s| of(s).is_none()).collect();
    if !loose.is_empty() {
        blocks.push(StudyBlock { study: None, runs: loose });
    }
    blocks
}

/// Up to this many runs, the answer lists every headline line; past it, one line per run (in report.md's index,
/// in report.html's answer box), and report.html collapses the runs' sections.
pub const ANSWER_RUNS: usize = 4;

/// GitHub's anchor for a heading: lower case, spaces to dashes, punctuation other than `-` and `_` dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Terminal lines past this many characters are split.
pub const LINE_WIDTH: usize = 160;

/// Groups warnings by kind, severe kinds first (one line each, whatever the number of groups affected).
pub fn group_warnings<'a>(warnings: impl IntoIterator<Item = &'a Warning>) -> Vec<WarningGroup> {
    let mut groups: Vec<WarningGroup> = Vec::new();
    for w in warnings {
        let subject = if w.kind == WarningKind::Failed { w.text.clone() } else { w.subject.clone() };
        match groups.iter_mut().find(|g| g.kind == w.kind) {
            Some(g) => g.subjects.push(subject),
            None => groups.push(WarningGroup { kind: w.kind, subjects: vec![subject] }),
        }
    }
    groups.sort_by_key(|g| (!g.kind.severe(), g.kind));
    groups
}

/// The conditions table's header and rows: one row per group with telemetry (empty when no group has any).
pub const CONDITIONS_HEADER: [&str; 9] = [
    "mode",
    "workers",
    "SM clock (MHz, busy)",
    "GPU busy (NVML, mean)",
    "max power (W)",
    "max temp (C)",
    "slowdowns",
    "other processes",
    "source",
];

pub fn conditions_rows(s: &RunSection) -> Vec<Vec<String>> {
    s.groups
        .iter()
        .filter_map(|g| g.conditions.as_ref().map(|c| (g, c)))
        .map(|(g, c)| {
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                g.key.mode.clone(),
                g.key.workers.to_string(),
                or_dash(c.sm_mhz.map(|(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") })),
                or_dash(c.gpu_busy_pct.map(|p| format!("{p:.0}%"))),
                or_dash(c.max_power_w.map(|w| match c.power_limit_w {
                    Some(limit) => format!("{w:.0} of {limit:.0}"),
                    None => format!("{w:.0}"),
                })),
                or_dash(c.max_temp_c.map(|t| t.to_string())),
                if c.slowdowns.is_empty() {
                    "none".into()
                } else {
                    c.slowdowns.iter().map(|(n, k)| format!("{n} ({k})")).collect::<Vec<_>>().join(", ")
                },
                match &c.other_processes {
                    None => "not attributable (pids of another PID namespace)".into(),
                    Some(o) if o.is_empty() => "none".into(),
                    Some(o) => o.join("; "),
                },
                format!("{}, {} samples", c.source, c.samples),
            ]
        })
        .collect()
}

/// What the streamed table across repeats shows, in words.
pub const STREAMED_ACROSS_INTRO: &str = "Streamed requests over the repeats (median [95% interval across repeats]; \
     each repeat's TTFT and TPOT p99 exact over its requests, set against the solo run of the same repeat):";

pub const STREAMED_ACROSS_HEADER: [&str; 10] = [
    "mode",
    "workers",
    "repeats",
    "output tokens/s",
    "TTFT p99",
    "TPOT p50",
    "TPOT p99",
    "TTFT p99 vs solo",
    "TPOT p50 vs solo",
    "TPOT p99 vs solo",
];

/// One row per streaming group: its tokens/s, TTFT and TPOT p99 and their ratios to solo over its repeats.
pub fn streamed_across_rows(s: &RunSection) -> Vec<Vec<String>> {
    let cell = |v: Option<&crate::analysis::repeats::Spread>, fmt: &dyn Fn(f64) -> String| {
        v.map(|v| table::spread(v, fmt)).unwrap_or_else(|| "-".into())
    };
    let ns = |v: f64| crate::units::format_ns(v);
    let times = |v: f64| format!("{}x", crate::units::three_digits(v));
    let count = |v: f64| format!("{v:.0}");
    s.figures
        .iter()
        .filter_map(|f| Some((f, f.streamed.as_ref()?)))
        .map(|(f, st)| {
            vec![
                f.key.mode.clone(),
                f.key.workers.to_string(),
                f.repeats.len().to_string(),
                cell(st.tokens_per_s.as_ref(), &count),
                cell(Some(&st.ttft_p99_ns), &ns),
                cell(st.tpot_p50_ns.as_ref(), &ns),
                cell(st.tpot_p99_ns.as_ref(), &ns),
                cell(st.ttft_p99_vs_solo.as_ref(), &times),
                cell(st.tpot_p50_vs_solo.as_ref(), &times),
                cell(st.tpot_p99_vs_solo.as_ref(), &times),
            ]
        })
        .collect()
}

/// The streaming table's header: a group whose commands reported `ttft_ms` (LLM serving).
pub const STREAMING_HEADER: [&str; 11] = [
    "mode",
    "workers",
    "repeat",
    "requests/s",
    "output tokens/s",
    "TTFT p50",
    "TTFT p99",
    "TPOT p50",
    "TPOT p99",
    "TTFT p99 vs solo",
    "TPOT p99 vs solo",
];

/// One row per repeat of each group with streamed requests (empty when none has any).
pub fn streaming_rows(s: &RunSection) -> Vec<Vec<String>> {
    let ns = |v: u64| crate::units::format_ns(v as f64);
    let p = |l: &Option<crate::analysis::stats::LatencySummary>,
             q: fn(&crate::analysis::stats::LatencySummary) -> u64| {
        l.as_ref().map(|l| ns(q(l))).unwrap_or_else(|| "-".into())
    };
    s.groups
        .iter()
        .filter(|g| g.ttft.is_some())
        .map(|g| {
            vec![
                g.key.mode.clone(),
                g.key.workers.to_string(),
                (g.repeat + 1).to_string(),
                format!("{:.1}", g.kernels_per_s.value),
                g.tokens_per_s.map(|t| format!("{t:.0}")).unwrap_or_else(|| "-".into()),
                p(&g.ttft, |l| l.p50_ns),
                p(&g.ttft, |l| l.p99_ns),
                p(&g.tpot, |l| l.p50_ns),
                p(&g.tpot, |l| l.p99_ns),
                g.ttft_p99_vs_solo.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into()),
                g.tpot_p99_vs_solo.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect()
}

/// The isolation verdicts of one run, mode and worker count whose repeats said the same, said once.
pub struct IsolationBlock<'a> {
    pub verdict: &'a IsolationVerdict,
    /// The repeats (0-based) it stands for, in order.
    pub repeats: Vec<u32>,
    /// Whether its run, mode and worker count ran more than one repeat.
    pub several: bool,
}

impl IsolationBlock<'_> {
    /// ` (repeats 1-3 alike)`, ` (repeat 2)`, or nothing for a run of one repeat.
    pub fn repeats_label(&self) -> String {
        match self.repeats.as_slice() {
            [0] if !self.several => String::new(),
            [one] => format!(" (repeat {})", one + 1),
            many => {
                format!(" (repeats {} alike)", many.iter().map(|r| (r + 1).to_string()).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Consecutive verdicts of one run, mode and worker count with the same sentences become one block.
pub fn isolation_blocks(verdicts: &[IsolationVerdict]) -> Vec<IsolationBlock<'_>> {
    let mut blocks: Vec<IsolationBlock> = Vec::new();
    for v in verdicts {
        match blocks.last_mut() {
            Some(b)
                if (&b.verdict.run_id, &b.verdict.mode, b.verdict.workers, &b.verdict.lines)
                    == (&v.run_id, &v.mode, v.workers, &v.lines) =>
            {
                b.repeats.push(v.repeat)
            }
            _ => blocks.push(IsolationBlock { verdict: v, repeats: vec![v.repeat], several: false }),
        }
    }
    let same =
        |a: &IsolationVerdict, b: &IsolationVerdict| (&a.run_id, &a.mode, a.workers) == (&b.run_id, &b.mode, b.workers);
    let several: Vec<bool> =
        blocks.iter().map(|b| verdicts.iter().filter(|v| same(v, b.verdict)).count() > 1).collect();
    for (b, several) in blocks.iter_mut().zip(several) {
        b.several = several;
    }
    blocks
}

/// What the SM share table shows, in words.
pub const SHARE_INTRO: &str =
    "Each kind of Pod that asked for a share of the SMs (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE), \
     against the same kernel alone on the whole GPU: a lone Pod (1 worker) shows what its percentage costs on an \
     otherwise idle GPU; beside others, what it got of the GPU for what it asked. `its SMs allow`: what the SMs \
     its context saw allow a grid of equal blocks (rounds of blocks on the whole GPU over rounds on its SMs; MPS \
     gave whole pairs of SMs on an H200: 25% of 132 was 32): a share got near it is the percentage's own cost.";

pub const SHARE_HEADER: [&str; 10] =
    ["run", "group", "kernel", "Pods", "asked", "SMs seen", "kernels/s a Pod", "alone at 100%", "got", "its SMs allow"];

pub fn share_rows(rows: &[crate::analysis::share::ShareRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.group.clone().unwrap_or_else(|| "-".into()),
                r.kernel.clone(),
                r.workers.to_string(),
                format!("{}%", r.asked_percent),
                format!("{} of {}", r.context_sms, r.device_sms),
                format!("{:.0}", r.per_pod_per_s),
                format!("{:.0}", r.alone_full_per_s),
                format!("{:.1}%", r.share_got * 100.0),
                r.sm_bound.map_or_else(|| "-".into(), |b| format!("{:.1}%", b * 100.0)),
            ]
        })
        .collect()
}

/// One line per mode and worker count (its first repeat's) on what a Pod's context could use of the GPU's
/// memory; empty where no result recorded it.
pub fn memory_lines(s: &RunSection) -> Vec<String> {
    // Repeats see a little more or less free memory: a group's first repeat speaks for it.
    let mut firsts: Vec<&GroupSummary> = Vec::new();
    for g in s.groups.iter().copied().filter(|g| g.memory.is_some()) {
        match firsts.iter_mut().find(|f| (f.key.mode.as_str(), f.key.workers) == (g.key.mode.as_str(), g.key.workers)) {
            Some(first) if g.repeat < first.repeat => *first = g,
            Some(_) => {}
            None => firsts.push(g),
        }
    }
    firsts
        .iter()
        .map(|g| {
            format!("{} x{}: a Pod's context {}", g.key.mode, g.key.workers, g.memory.as_deref().unwrap_or_default())
        })
        .collect()
}

/// One run on one GPU.
#[derive(Debug, Clone)]
pub struct RunSection<'a> {
    pub run_id: &'a str,
    /// Where its first worker's result was read (to place it under its plan).
    pub source: &'a str,
    pub gpu_uuid: &'a str,
    pub gpu_name: &'a str,
    pub driver: &'a str,
    pub workload: String,
    pub started_unix_ns: u64,
    /// How its first worker was started.
    pub command: String,
    /// Every repeat of every group of the run.
    pub groups: Vec<&'a GroupSummary>,
    /// Each group's figures across its repeats.
    pub figures: Vec<&'a GroupFigures>,
    pub comparisons: Vec<&'a Comparison>,
    pub warnings: Vec<WarningGroup>,
    /// The run's warnings one by one (the headline checks which concern a worker count).
    pub raw_warnings: Vec<&'a Warning>,
    /// The answer for this run, one line per worker count.
    pub headline: Vec<String>,
}

impl<'a> RunSection<'a> {
    /// `compare-1795560643 on GPU-0f1d21b0` where a run spans GPUs, else the run id.
    pub fn title(&self, several_gpus: bool) -> String {
        if several_gpus {
            format!("{} on {}", self.run_id, crate::units::first_chars(self.gpu_uuid, 12))
        } else {
            self.run_id.to_string()
        }
    }

    pub fn severe_warnings(&self) -> usize {
        self.warnings.iter().filter(|w| w.kind.severe()).count()
    }

    /// The repeats of one group, in order.
    pub fn repeats_of(&self, f: &GroupFigures) -> Vec<&'a GroupSummary> {
        self.groups.iter().copied().filter(|g| g.key == f.key).collect()
    }

    /// Whether any group of the run ran more than once (then the per-repeat table is worth showing).
    pub fn repeated(&self) -> bool {
        self.figures.iter().any(|f| f.repeats.len() > 1)
    }

    /// The summary table's rows, one per group.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.figures.iter().map(|f| table::row(f, &self.repeats_of(f))).collect()
    }

    /// The per-repeat table's rows.
    pub fn repeat_rows(&self) -> Vec<Vec<String>> {
        self.groups.iter().map(|g| table::repeat_row(g)).collect()
    }
}

/// The report's runs, in order, each with its groups, comparisons, warnings and headline.
pub fn sections(report: &Report) -> Vec<RunSection<'_>> {
    let mut out: Vec<RunSection> = Vec::new();
    for g in &report.analysis.groups {
        let same = |s: &RunSection| s.run_id == g.key.run_id && s.gpu_uuid == g.key.gpu_uuid;
        match out.iter_mut().find(|s| same(s)) {
            Some(s) => {
                s.groups.push(g);
                s.started_unix_ns = s.started_unix_ns.min(g.started_unix_ns);
            }
            None => out.push(RunSection {
                run_id: &g.key.run_id,
                source: g.per_worker.first().map(|w| w.source.as_str()).unwrap_or(""),
                gpu_uuid: &g.key.gpu_uuid,
                gpu_name: &g.gpu_name,
                driver: g.driver_version.as_deref().unwrap_or("?"),
                workload: describe_workload(g.shape.as_ref(), g.command.as_deref()),
                started_unix_ns: g.started_unix_ns,
                command: g.command_line.join(" "),
                groups: vec![g],
                figures: vec![],
                comparisons: vec![],
                warnings: vec![],
                raw_warnings: vec![],
                headline: vec![],
            }),
        }
    }
    for s in &mut out {
        s.comparisons =
            report.analysis.comparisons.iter().filter(|c| c.run_id == s.run_id && c.gpu_uuid == s.gpu_uuid).collect();
        s.figures = report
            .analysis
            .figures
            .iter()
            .filter(|f| f.key.run_id == s.run_id && f.key.gpu_uuid == s.gpu_uuid)
            .collect();
        s.raw_warnings = report.analysis.warnings.iter().filter(|w| w.run_id == s.run_id).collect();
        s.warnings = group_warnings(s.raw_warnings.iter().copied());
        s.headline = super::headline::headline(s);
    }
    out
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn a_long_warning_group_lists_each_subject_and_says_their_common_fix_once() {
        let fix = "the figures measure the CPU quota, not the GPU; drop limits.cpu or raise it";
        let group = WarningGroup {
            kind: WarningKind::Conditions,
            subjects: (0..4).map(|i| format!("ts x4 worker {i}: throttled for 5{i}% of its window: {fix}")).collect(),
        };
        let lines = group.lines();
        assert_eq!(lines.len(), 6, "{lines:#?}");
        assert_eq!(lines[1], "  - ts x4 worker 0: throttled for 50% of its window");
        assert_eq!(lines[5], format!("  each: {fix}"));
        assert!(lines.iter().all(|l| l.chars().count() <= LINE_WIDTH));
        let short = WarningGroup { kind: WarningKind::Incomplete, subjects: vec!["mps x4 (3 reported)".into()] };
        assert_eq!(short.lines(), vec![short.line()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Loaded;

    fn report(workers: Vec<crate::load::Worker>) -> Report {
        super::super::model::build(&Loaded { workers, sources: 1, ..Default::default() })
    }

    #[test]
    fn a_commands_work_is_counted_in_requests_and_its_overlap_is_not_measurable() {
        use crate::analysis::tests::command_worker;
        let start = 1_764_000_000_000_000_000;
        let r = report(vec![command_worker("mps", 1, 0, start, 1200, 5_000_000)]);
        let s = sections(&r);
        let line = &s[0].headline[0];
        assert!(line.contains("1 worker: mps ") && line.contains("requests/s in one repeat, p99"), "{line}");
        let header = super::super::table::header(&s[0].groups);
        assert_eq!(
            (header[4], header[5], header[12]),
            ("requests", "requests/s median [95% CI across repeats]", "items/s")
        );
        let row = &s[0].rows()[0];
        assert_eq!(row[6], "n/a");
        assert!(row[12].ends_with(" items/s"), "{row:?}");
    }

    #[test]
    fn warnings_are_one_line_per_kind_severe_first() {
        let w =
            |kind, subject: &str| Warning { kind, run_id: "r".into(), subject: subject.into(), text: String::new() };
        let groups = group_warnings(&[
            w(WarningKind::FewSamples, "mps x1 (n=40)"),
            w(WarningKind::FewSamples, "mps x2 (n=80)"),
            w(WarningKind::Incomplete, "mps x4 (3 reported, 3 complete)"),
            w(WarningKind::FewSamples, "timeslice x2 (n=80)"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].kind, WarningKind::Incomplete);
        assert_eq!(
            groups[1].line(),
            "too few samples for a distribution-free 95% bound on p99 (368 needed): mps x1 (n=40), mps x2 (n=80), timeslice x2 (n=80)"
        );
    }

    #[test]
    fn repeats_that_said_the_same_about_a_neighbour_are_one_block() {
        let verdict = |mode: &str, repeat, line: &str| IsolationVerdict {
            run_id: "plan-x".into(),
            mode: mode.into(),
            workers: 2,
            repeat,
            event: "fault",
            others: 1,
            others_survived: 0,
            served_again_ms: None,
            lines: vec![line.into()],
        };
        let verdicts = [
            verdict("mps", 0, "0 of 1 survived"),
            verdict("mps", 1, "0 of 1 survived"),
            verdict("mps", 2, "0 of 1 survived"),
            verdict("timeslice", 0, "served again 142 ms after"),
            verdict("timeslice", 1, "served again 106 ms after"),
        ];
        let blocks = isolation_blocks(&verdicts);
        let labels: Vec<(String, String)> =
            blocks.iter().map(|b| (b.verdict.mode.clone(), b.repeats_label())).collect();
        assert_eq!(
            labels,
            [
                ("mps".into(), " (repeats 1, 2, 3 alike)".into()),
                ("timeslice".into(), " (repeat 1)".into()),
                ("timeslice".into(), " (repeat 2)".into())
            ]
        );
    }
}
