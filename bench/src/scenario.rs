//! Capacity-planning scenarios (`bench/scenarios/*.toml`): one or more groups of Pods, each with its kernel,
//! size, arrival process and rate, count, and MPS active thread percentage. Parsing and validation only (pure).
//!
//! ```toml
//! name = "inference"
//! description = "identical inference-like Pods"
//! slo_group = "inference"         # whose p99 the SLO judges (default: the first swept group)
//! slo_ttft_p99_ms = 200            # optional, a streaming SLO group: its TTFT and TPOT p99 judged too
//! slo_tpot_p99_ms = 50             # (plan --slo-ttft-p99 / --slo-tpot-p99 override)
//! [[group]]
//! name = "inference"
//! kernel = "fma"                   # fma | stream | tiny
//! blocks = 16
//! threads = 256
//! iters = 70000
//! arrivals = "poisson"             # poisson | fixed | closed
//! rate = 200                       # requests/s per Pod (open loop)
//! pods = "sweep"                   # the count `plan` searches, or a fixed number
//! active_thread_percentage = 50    # optional, MPS only
//! memory_limit = "8G"              # optional: each Pod's CUDA processes' MPS pinned memory limit (binary
//!                                  # units); not enforceable under time-slicing, where the report says so
//! hold_memory = "all"              # optional, kernel groups: take this much device memory (or all it can
//!                                  # get) before measuring and hold it: a memory-greedy neighbour
//! fault_after = 2000               # optional, kernel groups: after N kernels launch one that writes to an
//!                                  # illegal address (a real GPU fault): a faulting neighbour
//!
//! [[group]]                        # a group may run a command instead of a kernel (`run --exec`):
//! name = "resnet"
//! command = ["python3", "bench/tenants/resnet.py", "--batch", "1"]
//! reports = true                   # it speaks the protocol (false: a neighbour only)
//! arrivals = "poisson"             # passed on as SHAREBENCH_ARRIVALS / SHAREBENCH_RATE
//! rate = 50
//! pods = "sweep"
//! ```

use crate::cli::{ArrivalProcess, WorkloadArgs};
use crate::error::{Error, Result};
use crate::mps::memory::MemoryAsk;
use crate::workload::{KernelKind, KernelShape};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub slo_group: Option<String>,
    /// Streaming SLOs of the SLO group (ms, p99), where its commands report `ttft_ms=`; `plan` flags override.
    #[serde(default)]
    pub slo_ttft_p99_ms: Option<f64>,
    #[serde(default)]
    pub slo_tpot_p99_ms: Option<f64>,
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
}

/// A group's Pod count: a fixed number (1..=[`MAX_GROUP_PODS`]), or "sweep" (the count `plan` searches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "PodsInFile")]
pub enum Pods {
    Fixed(u32),
    Sweep(String),
}

/// Most Pods a group may fix: the most clients MPS serves on one GPU, and more than time-slicing shares usefully.
pub const MAX_GROUP_PODS: u32 = 48;
/// Most groups a scenario may have.
pub const MAX_GROUPS: usize = 16;

/// What a scenario file may write for `pods`, before it is checked.
#[derive(Deserialize)]
#[serde(untagged)]
enum PodsInFile {
    Whole(i64),
    Fraction(f64),
    Word(String),
}

impl TryFrom<PodsInFile> for Pods {
    type Error = String;
    fn try_from(raw: PodsInFile) -> std::result::Result<Pods, String> {
        match raw {
            PodsInFile::Whole(n) if (1..=MAX_GROUP_PODS as i64).contains(&n) => Ok(Pods::Fixed(n as u32)),
            PodsInFile::Whole(n) => Err(format!("pods = {n} is not in 1..={MAX_GROUP_PODS} (or \"sweep\")")),
            PodsInFile::Fraction(x) => Err(format!("pods = {x} is not a whole number of Pods")),
            PodsInFile::Word(w) => Ok(Pods::Sweep(w)),
        }
    }
}

/// The 1-based line and column of a byte offset in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    Poisson,
    Fixed,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// The kernel its Pods launch, or
    pub kernel: Option<KernelKind>,
    /// the command they run as their workload (`run --exec`).
    pub command: Option<Vec<String>>,
    /// Whether the command speaks the reporting protocol (default true).
    #[serde(default = "default_reports")]
    pub reports: bool,
    #[serde(default = "default_blocks")]
    pub blocks: u32,
    #[serde(default = "default_threads")]
    pub threads: u32,
    #[serde(default)]
    pub iters: u32,
    #[serde(default = "default_bytes")]
    pub bytes: u64,
    #[serde(default = "default_arrivals")]
    pub arrivals: ArrivalKind,
    pub rate: Option<f64>,
    pub pods: Pods,
    pub active_thread_percentage: Option<u32>,
    /// Each CUDA process's MPS pinned device memory limit (`8G`, `512M`), passed to its Pods as
    /// `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`; nothing enforces it under time-slicing.
    pub memory_limit: Option<String>,
    /// Device memory each of its kernel Pods takes and holds (`20G` or `all`; `run --hold-memory`).
    pub hold_memory: Option<String>,
    /// After this many kernels each of its Pods raises a real GPU fault (`run --inject-fault-after`).
    pub fault_after: Option<u64>,
}

fn default_blocks() -> u32 {
    16
}
fn default_threads() -> u32 {
    256
}
fn default_bytes() -> u64 {
    64 << 20
}
fn default_reports() -> bool {
    true
}
fn default_arrivals() -> ArrivalKind {
    ArrivalKind::Closed
}

impl Group {
    pub fn swept(&self) -> bool {
        matches!(self.pods, Pods::Sweep(_))
    }

    /// Pods of this group when the swept count is `n`.
    pub fn pods_at(&self, n: u32) -> u32 {
        match self.pods {
            Pods::Fixed(k) => k,
            Pods::Sweep(_) => n,
        }
    }

    /// The kernel's shape; `None` for a command group.
    pub fn shape(&self) -> Option<KernelShape> {
        Some(KernelShape {
            kernel: self.kernel?,
            blocks: self.blocks,
            threads: self.threads,
            iters: self.iters,
            bytes: self.bytes,
        })
    }

    /// Sets the workload flags of one Pod of this group (the rate is overridable by `plan --rate` for the swept
    /// groups); the run's length, warm-up and seed stay as given.
    pub fn apply_to(&self, workload: &mut WorkloadArgs, rate_override: Option<f64>) {
        if let Some(kernel) = self.kernel {
            workload.kernel = kernel;
            workload.blocks = Some(self.blocks);
            workload.threads = self.threads;
            workload.iters = Some(self.iters);
            workload.bytes = self.bytes;
            workload.hold_memory = self.hold_memory.as_deref().and_then(|h| MemoryAsk::parse(h).ok());
        }
        let rate = if self.swept() { rate_override.or(self.rate) } else { self.rate };
        (workload.rate, workload.arrivals) = match (self.arrivals, rate) {
            (ArrivalKind::Closed, _) | (_, None) => (None, ArrivalProcess::Poisson),
            (ArrivalKind::Fixed, Some(r)) => (Some(r), ArrivalProcess::Fixed),
            (ArrivalKind::Poisson, Some(r)) => (Some(r), ArrivalProcess::Poisson),
        };
    }
}

/// What the worker with a given index runs at one point of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    pub group: &'a Group,
    /// Worker processes at this point, all groups together.
    pub processes: u32,
    /// The MPS active thread percentage this worker gets, if any.
    pub active_thread_percentage: Option<u32>,
}

impl Scenario {
    /// Parses and checks a scenario file's text; errors name the file and the field.
    pub fn parse(text: &str, source: &str) -> Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_and_column(text, s.start));
            let place = at.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default();
            Error::new(format!("{source}: {place}not a valid scenario: {}", e.message().trim()))
                .fix("see bench/scenarios/*.toml for the format")
        })?;
        scenario.validate().map_err(|e| Error::new(format!("{source}: {e}")))?;
        Ok(scenario)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.groups.is_empty() {
            return Err("no [[group]]".into());
        }
        if self.groups.len() > MAX_GROUPS {
            return Err(format!("{} groups: at most {MAX_GROUPS}", self.groups.len()));
        }
        if !self.groups.iter().any(Group::swept) {
            return Err("no group has pods = \"sweep\" (the count plan searches)".into());
        }
        for g in &self.groups {
            if let Pods::Sweep(word) = &g.pods {
                if word != "sweep" {
                    return Err(format!("group {}: pods must be a number or \"sweep\", not {word:?}", g.name));
                }
            }
            match (&g.shape(), &g.command) {
                (Some(_), Some(_)) => return Err(format!("group {}: give kernel or command, not both", g.name)),
                (None, None) => return Err(format!("group {}: needs a kernel or a command", g.name)),
                (None, Some(command)) if command.first().is_none_or(|p| p.trim().is_empty()) => {
                    return Err(format!("group {}: command is empty (e.g. [\"python3\", \"serve.py\"])", g.name))
                }
                (Some(shape), None) => {
                    shape.validate().map_err(|e| format!("group {}: {}", g.name, e.problem.replace("--", "")))?
                }
                (None, Some(_)) => {}
            }
            if g.kernel == Some(KernelKind::Fma) && g.iters == 0 {
                return Err(format!("group {}: fma needs iters > 0", g.name));
            }
            if g.arrivals != ArrivalKind::Closed && !g.rate.is_some_and(|r| r > 0.0 && r.is_finite()) {
                return Err(format!("group {}: {:?} arrivals need a rate > 0", g.name, g.arrivals));
            }
            if let Some(p) = g.active_thread_percentage {
                if !(1..=100).contains(&p) {
                    return Err(format!("group {}: active_thread_percentage {p} is not in 1..=100", g.name));
                }
            }
            if let Some(limit) = &g.memory_limit {
                match crate::mps::memory::parse_size(limit) {
                    Ok(b) if b >= 1 << 20 => {}
                    Ok(_) => return Err(format!("group {}: memory_limit {limit:?} is below 1M", g.name)),
                    Err(e) => return Err(format!("group {}: memory_limit: {e}", g.name)),
                }
            }
            if g.fault_after.is_some() && g.command.is_some() {
                return Err(format!("group {}: fault_after is for kernel groups", g.name));
            }
            match (&g.hold_memory, &g.command) {
                (Some(_), Some(_)) => {
                    return Err(format!("group {}: hold_memory is for kernel groups (a command takes its own)", g.name))
                }
                (Some(h), None) => {
                    MemoryAsk::parse(h).map_err(|e| format!("group {}: hold_memory: {e}", g.name))?;
                }
                _ => {}
            }
            if self.groups.iter().filter(|o| o.name == g.name).count() > 1 {
                return Err(format!("group name {} is used twice", g.name));
            }
        }
        for (name, v) in [("slo_ttft_p99_ms", self.slo_ttft_p99_ms), ("slo_tpot_p99_ms", self.slo_tpot_p99_ms)] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(format!("{name} must be a positive number of milliseconds"));
            }
        }
        if let Some(slo) = &self.slo_group {
            if !self.groups.iter().any(|g| &g.name == slo) {
                return Err(format!("slo_group {slo} names no group"));
            }
        }
        Ok(())
    }

    /// The group whose p99 the SLO judges.
    pub fn slo_group(&self) -> &Group {
        let named = self.slo_group.as_ref().and_then(|n| self.groups.iter().find(|g| &g.name == n));
        named.or_else(|| self.groups.iter().find(|g| g.swept())).unwrap_or(&self.groups[0])
    }

    /// Whether any group runs a command instead of a kernel.
    pub fn has_commands(&self) -> bool {
        self.groups.iter().any(|g| g.command.is_some())
    }

    /// Worker processes at swept count `n`.
    pub fn processes_at(&self, n: u32) -> u32 {
        self.groups.iter().map(|g| g.pods_at(n)).sum()
    }

    /// The group of worker `index` at swept count `pods` (workers are numbered group by group, in file order),
    /// and its MPS active thread percentage: `neighbour_atp` (a plan's knob) goes to the SLO group's neighbours,
    /// which in a one-group scenario are all the workers; otherwise the group's own setting holds.
    pub fn assign(&self, pods: u32, index: u32, neighbour_atp: Option<u32>) -> Option<Assignment<'_>> {
        let mut first = 0;
        let group = self.groups.iter().find(|g| {
            first += g.pods_at(pods);
            index < first
        })?;
        let neighbour = self.groups.len() == 1 || group.name != self.slo_group().name;
        let atp =
            if neighbour { neighbour_atp.or(group.active_thread_percentage) } else { group.active_thread_percentage };
        Some(Assignment { group, processes: self.processes_at(pods), active_thread_percentage: atp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOISY: &str = r#"
name = "noisy-neighbour"
slo_group = "latency"
[[group]]
name = "latency"
kernel = "tiny"
iters = 2000
arrivals = "poisson"
rate = 500
pods = 1
[[group]]
name = "batch"
kernel = "fma"
blocks = 132
iters = 70000
pods = "sweep"
active_thread_percentage = 50
"#;

    #[test]
    fn a_noisy_neighbour_scenario_parses() {
        let streamed = NOISY
            .replace("slo_group = \"latency\"", "slo_group = \"latency\"\nslo_ttft_p99_ms = 200\nslo_tpot_p99_ms = 50");
        let s = Scenario::parse(&streamed, "llm.toml").unwrap();
        assert_eq!((s.slo_ttft_p99_ms, s.slo_tpot_p99_ms), (Some(200.0), Some(50.0)));
        let limited = NOISY.replace("pods = 1", "pods = 1\nmemory_limit = \"8G\"");
        let s = Scenario::parse(&limited, "noisy.toml").unwrap();
        assert_eq!(s.groups[0].memory_limit.as_deref(), Some("8G"));
        let s = Scenario::parse(NOISY, "noisy.toml").unwrap();
        assert_eq!(s.slo_group().name, "latency");
        assert_eq!(s.processes_at(4), 5);
    }

    fn workload() -> WorkloadArgs {
        use clap::Parser;
        match crate::cli::Cli::try_parse_from(["sharebench", "run", "--duration", "3s"]).unwrap().command {
            crate::cli::Command::Run(a) => a.workload,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_group_sets_the_workload_and_only_swept_groups_take_the_rate_override() {
        let s = Scenario::parse(NOISY, "noisy.toml").unwrap();
        let mut w = workload();
        s.groups[0].apply_to(&mut w, Some(9.0));
        assert_eq!(
            (w.kernel, w.iters, w.rate, w.arrivals),
            (KernelKind::Tiny, Some(2000), Some(500.0), ArrivalProcess::Poisson)
        );
        assert!(s.groups[0].command.is_none() && s.groups[0].shape().is_some());
        assert_eq!(w.duration, Some(std::time::Duration::from_secs(3)));
        s.groups[1].apply_to(&mut w, Some(9.0));
        assert_eq!((w.kernel, w.blocks, w.rate), (KernelKind::Fma, Some(132), None));
    }

    #[test]
    fn workers_are_numbered_group_by_group_and_neighbours_get_the_knob() {
        let s = Scenario::parse(NOISY, "noisy.toml").unwrap();
        let names: Vec<&str> = (0..4).map(|i| s.assign(3, i, None).unwrap().group.name.as_str()).collect();
        assert_eq!(names, ["latency", "batch", "batch", "batch"]);
        assert!(s.assign(3, 4, None).is_none());
        assert_eq!(s.assign(3, 0, Some(25)).unwrap().active_thread_percentage, None);
        assert_eq!(s.assign(3, 1, None).unwrap().active_thread_percentage, Some(50));
        assert_eq!(s.assign(3, 1, Some(25)).unwrap().active_thread_percentage, Some(25));
        assert_eq!(s.assign(3, 1, None).unwrap().processes, 4);
    }

    #[test]
    fn a_command_group_runs_its_command_at_its_rate() {
        let text =
            NOISY.replace("kernel = \"fma\"", "command = [\"python3\", \"bench/tenants/resnet.py\"]\nreports = true");
        let s = Scenario::parse(&text, "resnet.toml").unwrap();
        let batch = &s.groups[1];
        assert_eq!(batch.command.as_deref().unwrap()[1], "bench/tenants/resnet.py");
        assert!(batch.shape().is_none() && batch.reports);
        let mut w = workload();
        batch.apply_to(&mut w, Some(40.0));
        assert_eq!((w.kernel, w.rate), (KernelKind::Fma, None), "closed loop; the kernel flags stay unused");
    }

    #[test]
    fn the_shipped_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            Scenario::parse(&std::fs::read_to_string(&path).unwrap(), &path.display().to_string()).unwrap();
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (NOISY.replace("pods = \"sweep\"", "pods = 2"), "no group has pods = \"sweep\""),
            (NOISY.replace("rate = 500", ""), "need a rate > 0"),
            (NOISY.replace("active_thread_percentage = 50", "active_thread_percentage = 150"), "not in 1..=100"),
            (NOISY.replace("slo_group = \"latency\"", "slo_group = \"nope\""), "names no group"),
            (
                NOISY.replace("slo_group = \"latency\"", "slo_group = \"latency\"\nslo_ttft_p99_ms = -5.0"),
                "slo_ttft_p99_ms must be",
            ),
            (NOISY.replace("pods = 1", "pods = 1\nmemory_limit = \"8X\""), "memory_limit: unknown unit"),
            (NOISY.replace("pods = 1", "pods = 1\nmemory_limit = \"4096\""), "below 1M"),
            (NOISY.replace("pods = 1", "pods = 1\nhold_memory = \"lots\""), "hold_memory: 'lots' is not a size"),
            (NOISY.replace("kernel = \"tiny\"", "kernel = \"gemm\""), "not a valid scenario"),
            (NOISY.replace("pods = 1", "pods = 1\ncolour = 3"), "not a valid scenario"),
            (NOISY.replace("pods = \"sweep\"", "pods = \"many\""), "not \"many\""),
            (NOISY.replace("kernel = \"tiny\"", "command = [\"python3\"]\nkernel = \"tiny\""), "not both"),
            (NOISY.replace("kernel = \"tiny\"", ""), "needs a kernel or a command"),
            (NOISY.replace("kernel = \"tiny\"", "command = []"), "command is empty"),
            // Sizes: no zero, negative, fractional or huge Pod counts (a Job of a billion completions).
            (NOISY.replace("pods = 1", "pods = 0"), "pods = 0 is not in 1..=48"),
            (NOISY.replace("pods = 1", "pods = -1"), "pods = -1 is not in 1..=48"),
            (NOISY.replace("pods = 1", "pods = 1.5"), "pods = 1.5 is not a whole number"),
            (NOISY.replace("pods = 1", "pods = 1000000000"), "pods = 1000000000 is not in 1..=48"),
            (NOISY.replace("pods = 1", "pods = 4294967295"), "is not in 1..=48"),
        ];
        for (text, needle) in cases {
            let e = Scenario::parse(&text, "s.toml").unwrap_err();
            assert!(e.problem.contains(needle), "{needle}: {}", e.problem);
            assert!(e.problem.starts_with("s.toml: "));
        }
        // A syntax error names its line and column.
        let e = Scenario::parse(&NOISY.replace("pods = 1", "pods = = 1"), "s.toml").unwrap_err();
        let line = NOISY.lines().position(|l| l.contains("pods = 1")).unwrap() + 1;
        assert!(e.problem.starts_with(&format!("s.toml: {line}:")), "{}", e.problem);
        let many = (0..17)
            .map(|i| {
                format!("[[group]]\nname = \"g{i}\"\nkernel = \"tiny\"\narrivals = \"closed\"\npods = \"sweep\"\n")
            })
            .collect::<String>();
        let e = Scenario::parse(&format!("name = \"x\"\n{many}"), "s.toml").unwrap_err();
        assert!(e.problem.contains("17 groups: at most 16"), "{}", e.problem);
    }
}
