//! The command line: clap definitions only. Turning flags into validated settings happens in the commands.

use crate::units::{parse_bytes, parse_duration};
use crate::workload::KernelKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// How well do N workloads share one NVIDIA GPU: CUDA MPS versus time-slicing, measured.
#[derive(Parser, Debug)]
#[command(name = "sharebench", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One worker (one per Pod): verify the sharing mode, meet peers at a barrier, launch kernels, record them.
    Run(RunArgs),
    /// MPS dial tone: can this process reach the MPS daemon, and does its CUDA context really join it?
    Check(CheckArgs),
    /// The default job: N workers time-sliced, then under MPS (a private daemon), then as N streams in one
    /// process; then the report.
    Compare(CompareArgs),
    /// Capacity planning: how many Pods of a scenario fit on one GPU per mode within a p99 latency SLO.
    Plan(PlanArgs),
    /// Merge worker results (a run directory, files, or - for `kubectl logs` on stdin) into a report.
    Report(ReportArgs),
    /// Measure this GPU's ceilings (copy bandwidth, FP32 peak) and sharebench's own overhead.
    Calibrate(CalibrateArgs),
    /// Write a plan directory's pages again (plan.txt, plan.md, plan.csv, plan.html, the capacity chart) from its
    /// plan.json, as this sharebench writes them; nothing is measured.
    PlanPages(PlanPagesArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PlanPagesArgs {
    /// The directory `sharebench plan` wrote (it holds plan.json).
    pub dir: PathBuf,
}

/// The sharing mode a worker runs under; `mps` and `timeslice` are verified before measuring.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Time-slicing: the process must NOT be an MPS client.
    Timeslice,
    /// MPS: the process must be verified as a client of the MPS server.
    Mps,
    /// The single-process multi-stream ceiling (use with --streams N).
    Streams,
    /// No verification; the result is labelled unverified.
    Unverified,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Timeslice => "timeslice",
            Mode::Mps => "mps",
            Mode::Streams => "streams",
            Mode::Unverified => "unverified",
        }
    }
}

/// Default FMA iterations: about 0.6 ms per kernel with one 256-thread block per SM on an H100.
pub const DEFAULT_FMA_ITERS: u32 = 70_000;

/// What each worker launches.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Workload")]
pub struct WorkloadArgs {
    /// Kernel: fma (compute-bound), stream (memory-bound) or tiny (one block, launch latency).
    #[arg(long, default_value = "fma", value_parser = clap::value_parser!(KernelKind))]
    pub kernel: KernelKind,
    /// Blocks per launch [default: the GPU's SM count].
    #[arg(long)]
    pub blocks: Option<u32>,
    /// Threads per block (1-1024).
    #[arg(long, default_value_t = 256)]
    pub threads: u32,
    /// Loop iterations per thread [default: 70000 for fma, 0 for tiny].
    #[arg(long)]
    pub iters: Option<u32>,
    /// Buffer size for the stream kernel (read and written once per launch).
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Kernels to record per worker (closed loop) [default: 1000; compare: 1 s of measurement per phase instead].
    #[arg(short = 'n', long, conflicts_with = "duration", allow_hyphen_values = true)]
    pub kernels: Option<u64>,
    /// Record for this long instead of a kernel count (e.g. 10s).
    #[arg(short = 'd', long, value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Unrecorded warm-up kernels before the measurement.
    #[arg(long, default_value_t = 10)]
    pub warmup: u32,
    /// Open loop: requests per second per worker (latency counts from each request's intended start).
    #[arg(long, value_name = "PER_S", allow_hyphen_values = true)]
    pub rate: Option<f64>,
    /// Inter-arrival times of the open loop.
    #[arg(long, value_enum, default_value = "poisson", requires = "rate")]
    pub arrivals: ArrivalProcess,
    /// Seed of the Poisson arrivals (each worker adds its index).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How a worker waits for each kernel: spin (a CPU busy, the soonest answer), yield (spins, giving the CPU up
    /// between polls), blocking (sleeps until the GPU's interrupt: no CPU, a wake-up's latency added), or auto:
    /// spin unless the worker's CPU quota (a Pod's limits.cpu) is below one CPU per stream plus 0.5, then blocking.
    #[arg(long, value_enum, default_value = "auto", env = "SHAREBENCH_SYNC")]
    pub sync: SyncChoice,
    /// Take this much device memory when the window opens (after every peer made its context) and hold it to
    /// the end (`20G`, binary units), or `all` it can get, while the kernels run as usual: a memory-greedy
    /// neighbour that grows. The result records what it got
    /// and what stopped it (its MPS limit, or the GPU's free memory).
    #[arg(long, value_name = "SIZE|all", value_parser = crate::mps::memory::MemoryAsk::parse)]
    pub hold_memory: Option<crate::mps::memory::MemoryAsk>,
}

/// The `--sync` choices (see `gpu::Waiting`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncChoice {
    Auto,
    Spin,
    Yield,
    Blocking,
}

/// How open-loop requests are spaced.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalProcess {
    Poisson,
    Fixed,
}

impl WorkloadArgs {
    /// The same workload as `sharebench run` flags, for child workers.
    pub fn to_args(&self) -> Vec<String> {
        let mut args =
            vec!["--kernel".to_string(), self.kernel.to_string(), "--threads".into(), self.threads.to_string()];
        args.extend(["--bytes".to_string(), self.bytes.to_string(), "--warmup".into(), self.warmup.to_string()]);
        if let Some(b) = self.blocks {
            args.extend(["--blocks".to_string(), b.to_string()]);
        }
        if let Some(i) = self.iters {
            args.extend(["--iters".to_string(), i.to_string()]);
        }
        if let Some(k) = self.kernels {
            args.extend(["--kernels".to_string(), k.to_string()]);
        }
        let sync = self.sync.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        args.extend(["--sync".to_string(), sync]);
        if let Some(ask) = self.hold_memory {
            args.extend(["--hold-memory".to_string(), ask.arg()]);
        }
        args.extend(self.window_args());
        args
    }

    /// How long and at what rate, without the kernel: what a worker running a command (`--exec`) takes.
    pub fn window_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(d) = self.duration {
            args.extend(["--duration".to_string(), format!("{}ms", d.as_millis())]);
        }
        if let Some(rate) = self.rate {
            let process = match self.arrivals {
                ArrivalProcess::Poisson => "poisson",
                ArrivalProcess::Fixed => "fixed",
            };
            args.extend(["--rate".to_string(), rate.to_string(), "--arrivals".into(), process.into()]);
            args.extend(["--seed".to_string(), self.seed.to_string()]);
        }
        args
    }
}

impl clap::builder::ValueParserFactory for KernelKind {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<KernelKind>())
    }
}

/// Whether this worker samples GPU telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Telemetry {
    /// Worker 0 samples (one sampler per run on one GPU).
    Auto,
    /// This worker samples (compare gives it to the first worker on each GPU).
    On,
    /// No telemetry (to measure the sampler's own cost).
    Off,
}

/// How a foreign command (`--exec`) is waited for and stopped.
#[derive(Args, Debug, Clone)]
pub struct TenantArgs {
    /// Longest a tenant command may take to report `ready` (model loaded, warmed up).
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// After the window, how long a tenant command has between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_grace: Duration,
}

impl TenantArgs {
    /// The same settings as `sharebench run` flags, for child workers.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--ready-timeout".into(),
            format!("{}ms", self.ready_timeout.as_millis()),
            "--stop-grace".into(),
            format!("{}ms", self.stop_grace.as_millis()),
        ]
    }
}

/// A foreign command as the workload (`run --exec`, `compare --exec`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Your own workload (a tenant command)")]
pub struct ExecArgs {
    /// Run COMMAND (after `--`) as the workload instead of sharebench's kernels: in the verified mode, measured
    /// over the run's common window from the requests it reports (see bench/tenants/README.md); compare runs
    /// it time-sliced and under MPS (the one-process streams ceiling does not apply to a foreign command).
    #[arg(long, requires = "command", conflicts_with_all = ["kernel", "blocks", "threads", "iters", "bytes", "kernels"])]
    pub exec: bool,
    /// The command `--exec` runs, after `--`: sharebench run --exec -- python3 serve.py --batch 1
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// The command does not speak the reporting protocol: it is a neighbour only, ready as soon as it starts,
    /// reported with its run time and exit status.
    #[arg(long = "no-protocol", alias = "no-report", requires = "exec")]
    pub no_report: bool,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub foreign: ExecArgs,
    /// Sharing mode to verify and record (unverified: record without checking, said on stderr).
    #[arg(short = 'm', long, value_enum, default_value = "unverified")]
    pub mode: Mode,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// CUDA streams in this process, each its own closed loop (the multi-stream ceiling).
    #[arg(long, default_value_t = 1, conflicts_with = "exec")]
    pub streams: u32,
    /// Number of workers in the run.
    #[arg(short = 'w', long, default_value_t = 1, allow_hyphen_values = true)]
    pub workers: u32,
    /// This worker's index in 0..workers [default: $JOB_COMPLETION_INDEX, else 0].
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    pub worker_index: Option<u32>,
    /// Identifier shared by the workers of one run [default: derived from the start time].
    #[arg(long)]
    pub run_id: Option<String>,
    /// Which repeat of the run's configuration this worker measures, 0-based (set by compare and plan; on
    /// Kubernetes one Job per repeat, all with one run id).
    #[arg(long, env = "SHAREBENCH_REPEAT", default_value_t = 0)]
    pub repeat: u32,
    /// Meet the other workers at this barrier (HOST:PORT) before measuring.
    #[arg(long)]
    pub barrier: Option<String>,
    /// Worker 0 also serves the barrier on this address, e.g. 0.0.0.0:7777 (other workers ignore it, so every
    /// Pod of a Job can get the same arguments).
    #[arg(long)]
    pub barrier_listen: Option<String>,
    /// How long to wait for all workers at the barrier.
    #[arg(long, default_value = "120s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub barrier_timeout: Duration,
    /// A secret every worker of the run shares; the barrier admits no one without it (compare makes one per
    /// group; on Kubernetes the Secret `sharebench-barrier-token`, which `plan --kubernetes` makes per Job).
    #[arg(long, env = "SHAREBENCH_BARRIER_TOKEN", hide_env_values = true)]
    pub barrier_token: Option<String>,
    /// Write the result here instead of stdout.
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub control: MpsControlArgs,
    /// Testing aid: after N recorded kernels, launch a kernel that writes to an illegal address (a real GPU
    /// fault), to see which other workers it takes down.
    #[arg(long, value_name = "N", conflicts_with = "exec")]
    pub inject_fault_after: Option<u64>,
    /// GPU telemetry through NVML while measuring (clocks, throttle reasons, power, processes on the GPU):
    /// `auto` has worker 0 sample, `on` this worker, `off` none (only to measure the sampler's own cost).
    #[arg(long, value_enum, default_value = "auto")]
    pub telemetry: Telemetry,
    /// Name of this worker's group within a multi-group run (set by `plan`).
    #[arg(long, conflicts_with = "scenario")]
    pub group: Option<String>,
    /// The run's Pods whose commands run alone in this window, with no sharebench worker (set by `compare
    /// --observer-effect`; recorded in the result so its group is read as part of the window).
    #[arg(long, value_name = "INDICES", value_delimiter = ',', hide = true, requires = "exec")]
    pub alone_indices: Vec<u32>,
    #[command(flatten)]
    pub scenario: ScenarioWorkerArgs,
}

/// One worker of a plan point: the scenario gives its group, workload and MPS thread percentage by its index.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Scenario (set by plan)")]
pub struct ScenarioWorkerArgs {
    /// Run as one Pod of this scenario (see bench/scenarios/*.toml): --worker-index picks the group and its
    /// workload (kernel, size, arrivals, rate, MPS active thread percentage); --rate overrides the swept rate.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "blocks", "threads", "iters", "bytes", "arrivals"])]
    pub scenario: Option<PathBuf>,
    /// The scenario's swept Pod count at this point (with --scenario; --workers must equal its worker count).
    #[arg(long, value_name = "N", requires = "scenario")]
    pub scenario_pods: Option<u32>,
    /// MPS knob of a plan: active thread percentage for the SLO group's neighbours (with --scenario).
    #[arg(long, value_name = "PCT", requires = "scenario")]
    pub neighbour_atp: Option<u32>,
}

/// How to reach and judge the MPS control daemon.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "MPS")]
pub struct MpsControlArgs {
    /// The control client to use [default: nvidia-cuda-mps-control on PATH].
    #[arg(long, value_name = "PATH")]
    pub mps_control: Option<PathBuf>,
    /// Deadline for each control-client call; a daemon that does not answer in time is reported as hung.
    #[arg(long, default_value = "5s", value_parser = crate::units::parse_positive_duration, allow_hyphen_values = true)]
    pub mps_timeout: Duration,
}

impl MpsControlArgs {
    /// The same settings as `sharebench run` flags, for child workers.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--mps-timeout".to_string(), format!("{}ms", self.mps_timeout.as_millis())];
        if let Some(p) = &self.mps_control {
            args.extend(["--mps-control".to_string(), p.display().to_string()]);
        }
        args
    }
}

/// The sharing a check expects.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// This process must join MPS.
    Mps,
    /// This process must NOT be an MPS client.
    Timeslice,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// What this process should be.
    #[arg(long, value_enum, default_value = "mps")]
    pub expect: Expect,
    /// Pipe directory to query [default: $CUDA_MPS_PIPE_DIRECTORY, else /tmp/nvidia-mps].
    #[arg(long, value_name = "DIR")]
    pub pipe_dir: Option<PathBuf>,
    #[command(flatten)]
    pub control: MpsControlArgs,
    /// CUDA device ordinal for the membership probe.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Run directories, result files, or - (stdin: worker output mixed with other log lines).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Directory for report.json, report.md, report.html, summary.csv, trace.json and the charts [default: none,
    /// the summary is printed only].
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Report the valid results and list the invalid ones as excluded, instead of stopping at the first.
    #[arg(long)]
    pub keep_going: bool,
    /// Replace an existing report in --out.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Print report.json to stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
}

/// The ways `compare` runs the workload.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompareMode {
    Timeslice,
    Mps,
    Streams,
}

impl CompareMode {
    pub fn label(self) -> &'static str {
        match self {
            CompareMode::Timeslice => "timeslice",
            CompareMode::Mps => "mps",
            CompareMode::Streams => "streams",
        }
    }
}

/// The most worker processes a compare runs at once (under MPS at most 48 per GPU: see `compare`).
pub const MAX_WORKERS: u32 = 1024;

/// Worker counts of a compare run, ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCounts(pub Vec<u32>);

/// Parses `4` or `1,2,4,8` into worker counts.
pub fn parse_worker_counts(text: &str) -> Result<WorkerCounts, String> {
    let mut counts = Vec::new();
    for part in text.split(',') {
        let n: u32 = part.trim().parse().map_err(|_| format!("'{part}' is not a worker count (e.g. 4 or 1,2,4,8)"))?;
        if n == 0 || n > MAX_WORKERS {
            return Err(format!("{n} workers is not in 1..={MAX_WORKERS}"));
        }
        if !counts.contains(&n) {
            counts.push(n);
        }
    }
    counts.sort_unstable();
    Ok(WorkerCounts(counts))
}

/// CUDA ordinals of the GPUs of a compare run, distinct, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuList(pub Vec<u32>);

/// Parses `0,1` into GPU ordinals.
pub fn parse_gpu_list(text: &str) -> Result<GpuList, String> {
    let mut gpus = Vec::new();
    for part in text.split(',') {
        let n: u32 = part.trim().parse().map_err(|_| format!("'{part}' is not a GPU ordinal (e.g. 0,1)"))?;
        if gpus.contains(&n) {
            return Err(format!("GPU {n} is listed twice"));
        }
        gpus.push(n);
    }
    Ok(GpuList(gpus))
}

/// How many private MPS control daemons serve the GPUs of a compare run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpsDaemons {
    /// One daemon per GPU, each seeing only its GPU.
    PerGpu,
    /// One daemon for all the GPUs of the run.
    Shared,
}

/// The order of a compare's phases within each repeat.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseOrder {
    Interleaved,
    Shuffled,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Worker processes; a list (1,2,4,8) sweeps the counts and adds a scaling chart.
    #[arg(short = 'w', long, default_value = "4", value_parser = parse_worker_counts, allow_hyphen_values = true)]
    pub workers: WorkerCounts,
    /// Modes to run, in this order.
    #[arg(short = 'm', long, value_enum, value_delimiter = ',', default_value = "timeslice,mps,streams")]
    pub modes: Vec<CompareMode>,
    /// Skip the one-worker run that slowdowns are measured against.
    #[arg(long)]
    pub no_solo: bool,
    /// Runs of every phase, each with fresh worker processes, modes interleaved (TS, MPS, streams, TS, ...):
    /// every headline figure is the median over them with an interval across them, and a winner is named only
    /// where every repeat agrees.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Order of the phases within each repeat: as listed (interleaved), or shuffled per repeat with --order-seed
    /// (randomised blocks; the seed is recorded in compare.json).
    #[arg(long, value_enum, default_value = "interleaved")]
    pub order: PhaseOrder,
    /// Seed of --order shuffled.
    #[arg(long, default_value_t = 1)]
    pub order_seed: u64,
    /// Start a fresh private MPS daemon for every repeat [default: one for the whole run, as a node's daemon
    /// serves one Job after another].
    #[arg(long, conflicts_with = "mps_pipe_dir")]
    pub fresh_mps_daemon: bool,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Spread the workers over these GPUs (CUDA ordinals, e.g. 0,1): worker i runs on the (i mod n)-th; the
    /// multi-stream ceiling runs one process per GPU; the report shows each GPU on its own.
    #[arg(long, value_name = "LIST", value_parser = parse_gpu_list, conflicts_with = "gpu")]
    pub gpus: Option<GpuList>,
    /// With --gpus, the private MPS daemons: one per GPU (a daemon's failure stays on its GPU) or one for all.
    #[arg(long, value_enum, default_value = "per-gpu")]
    pub mps_daemons: MpsDaemons,
    /// Run directory [default: ./sharebench-compare-<invocation id>].
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Reuse a non-empty run directory, replacing its results and report.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Use the MPS daemon of this pipe directory instead of starting a private one.
    #[arg(long, value_name = "DIR")]
    pub mps_pipe_dir: Option<PathBuf>,
    #[command(flatten)]
    pub control: MpsControlArgs,
    /// How long workers wait for each other at the start barrier.
    #[arg(long, default_value = "120s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub barrier_timeout: Duration,
    /// Blast radius: worker 0 of every multi-worker phase triggers a real GPU fault (an illegal address) halfway
    /// through its kernels; the report shows which other workers it took down in each mode.
    #[arg(long, requires = "kernels", conflicts_with = "exec")]
    pub inject_fault: bool,
    /// With --exec: run part of the Pods' commands with no sharebench worker beside them (this process starts
    /// them, their protocol lines go to files read afterwards), and report requests/s and p99 under sharebench
    /// against alone: what supervising a tenant costs it (`observer-effect.md`). See --observer-design.
    #[arg(long, requires = "exec")]
    pub observer_effect: bool,
    /// How --observer-effect sets the two side by side. `shared-window`: in every phase of 2 or more Pods half
    /// the Pods run supervised and half alone, in one window on one GPU (alternate indices, swapped each
    /// repeat), so whatever moves a whole window (the GPU, the daemon, the node) moves both sides alike.
    /// `paired`: every phase runs twice, all Pods supervised, then all alone (order alternating by repeat):
    /// it also sees a cost that reaches every tenant, at the price of the window-to-window spread.
    #[arg(long, value_enum, default_value = "shared-window", requires = "observer_effect")]
    pub observer_design: ObserverDesign,
    #[command(flatten)]
    pub foreign: ExecArgs,
}

/// How `compare --observer-effect` measures the tenants alone (see `CompareArgs::observer_design`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverDesign {
    SharedWindow,
    Paired,
}

impl ObserverDesign {
    pub fn label(self) -> &'static str {
        match self {
            ObserverDesign::SharedWindow => "shared-window",
            ObserverDesign::Paired => "paired",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Scenario file (see bench/scenarios/*.toml).
    pub scenario: PathBuf,
    /// The SLO: p99 latency of the scenario's SLO group, in milliseconds (5) or with a unit (5ms, 0.5s).
    #[arg(long, value_name = "LATENCY", value_parser = crate::units::parse_millis, allow_hyphen_values = true)]
    pub slo_p99: f64,
    /// Also an SLO on the SLO group's time to first token, p99 (a streaming tenant's `ttft_ms=`; overrides the
    /// scenario's `slo_ttft_p99_ms`), judged as the latency is.
    #[arg(long, value_name = "LATENCY", value_parser = crate::units::parse_millis, allow_hyphen_values = true)]
    pub slo_ttft_p99: Option<f64>,
    /// Also an SLO on the SLO group's time per output token after the first, p99 (overrides `slo_tpot_p99_ms`).
    #[arg(long, value_name = "LATENCY", value_parser = crate::units::parse_millis, allow_hyphen_values = true)]
    pub slo_tpot_p99: Option<f64>,
    /// Requests per second per Pod of the swept groups (overrides the scenario's rate).
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Largest Pod count to try (at most 48 worker processes per GPU under MPS).
    #[arg(long, default_value_t = 16)]
    pub max_pods: u32,
    /// Modes to plan for.
    #[arg(short = 'm', long, value_enum, value_delimiter = ',', default_value = "timeslice,mps")]
    pub modes: Vec<CompareMode>,
    /// How long every point is measured.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The longest a point's window is stretched to so that an open-loop SLO group collects about 1,200 requests
    /// (a p99 bound needs 368 in every repeat): a slow tenant (an LLM Pod at 4 requests/s) needs over 92 s at one
    /// Pod, or its points are `Invalid`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub max_point_duration: Duration,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Output directory [default: ./sharebench-plan-<invocation id>].
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Reuse a non-empty output directory.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub control: MpsControlArgs,
    /// How long workers wait for each other at each point's start barrier (Pods of a Kubernetes point wait at
    /// least 300 s, for scheduling and image pulls).
    #[arg(long, default_value = "120s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub barrier_timeout: Duration,
    /// MPS knob: search once per active thread percentage given to the SLO group's neighbours (e.g. 25,50,100).
    #[arg(long, value_delimiter = ',', value_name = "PCT")]
    pub atp: Vec<u32>,
    /// Blast radius: after each mode's search, one more point where one worker triggers a real GPU fault; the
    /// plan records which other workers it took down.
    #[arg(long)]
    pub inject_fault: bool,
    /// What to search: the most Pods per GPU at the given rate, or the highest rate per Pod at --pods Pods.
    #[arg(long, value_enum, default_value = "pods")]
    pub search: Search,
    /// Pods of the swept groups during a rate search.
    #[arg(long, default_value_t = 1)]
    pub pods: u32,
    /// Runs of every point, each with fresh workers (on Kubernetes one Job each), settings interleaved; a point
    /// meets the SLO only when the upper bound of its p99 across them does.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub kubernetes: KubernetesPlanArgs,
}

/// Running a plan's points as Kubernetes Jobs instead of local processes.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubernetesPlanArgs {
    /// Run every point as an Indexed Job built from this kustomize overlay for the mode (repeat per mode), e.g.
    /// --kubernetes timeslice=manifests/overlays/dra-timeslicing --kubernetes mps=manifests/overlays/dra-mps.
    #[arg(long = "kubernetes", value_name = "MODE=OVERLAY", value_parser = parse_mode_overlay)]
    pub overlays: Vec<(CompareMode, PathBuf)>,
    /// The kubectl to run.
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    pub kubectl: PathBuf,
    /// Namespace of the Jobs [default: the kubectl context's].
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Longest a point's Job may take, scheduling and image pull included; then it is deleted and the point fails.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub point_timeout: Duration,
    /// Write every point's overlay (all Pod counts up to --max-pods) and stop: nothing is applied.
    #[arg(long)]
    pub dry_run: bool,
}

/// Parses `mps=manifests/overlays/dra-mps`.
fn parse_mode_overlay(text: &str) -> Result<(CompareMode, PathBuf), String> {
    let (mode, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not MODE=OVERLAY (e.g. mps=manifests/overlays/dra-mps)"))?;
    let mode = CompareMode::from_str(mode, true).map_err(|_| format!("'{mode}' is not timeslice or mps"))?;
    if mode == CompareMode::Streams || dir.is_empty() {
        return Err(format!("'{text}' is not MODE=OVERLAY with MODE timeslice or mps"));
    }
    Ok((mode, PathBuf::from(dir)))
}

/// What `plan` searches for.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// The most Pods per GPU meeting the SLO.
    Pods,
    /// The highest request rate per Pod meeting the SLO, at a fixed Pod count.
    Rate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sharebench").chain(args.split_whitespace()))
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_command_after_exec_is_the_workload_for_run_and_compare() {
        let Command::Run(run) =
            parse("run --mode mps --exec --ready-timeout 30s -- python3 serve.py --batch 1").unwrap().command
        else {
            panic!("not run")
        };
        assert!(run.foreign.exec && !run.foreign.no_report);
        assert_eq!(run.foreign.command, ["python3", "serve.py", "--batch", "1"]);
        assert_eq!(run.foreign.tenant.ready_timeout, Duration::from_secs(30));
        let Command::Compare(compare) = parse("compare --workers 2 --exec --no-protocol -- sleep 5").unwrap().command
        else {
            panic!("not compare")
        };
        assert!(compare.foreign.exec && compare.foreign.no_report);
        // The flag's earlier name still works.
        let Command::Compare(old) = parse("compare --exec --no-report -- sleep 5").unwrap().command else { panic!() };
        assert!(old.foreign.no_report);
        assert_eq!(compare.foreign.command, ["sleep", "5"]);
    }

    #[test]
    fn kernel_flags_and_exec_exclude_each_other() {
        for bad in [
            "run --exec --blocks 16 -- sleep 1",
            "run --exec --streams 2 -- sleep 1",
            "run --exec --inject-fault-after 5 -- sleep 1",
            "compare --exec --kernels 5 --inject-fault -- sleep 1",
            "run --exec",
            "run --no-report -- sleep 1",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
