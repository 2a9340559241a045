//! GPU tests: run on a machine with an NVIDIA GPU, with `--ignored` (see the README). They drive the real
//! binary (`SHAREBENCH_BIN`, else the one cargo built) and check what it recorded.

mod common;
use common::{sharebench, PrivateDaemon};

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = sharebench().arg("run").args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn every_kernel_loads_runs_and_is_stamped() {
    for kernel in ["fma", "stream", "tiny"] {
        let r = run_json(&["--kernel", kernel, "--kernels", "20", "--bytes", "64MiB", "--iters", "1000"]);
        assert_eq!(r["status"]["complete"], true);
        let lane = &r["lanes"][0];
        assert_eq!(lane["kernels"], 20, "{kernel}");
        assert_eq!(lane["records"]["data"].as_str().unwrap().len(), 20 * 32);
        assert!(r["gpu"]["uuid"].as_str().unwrap().starts_with("GPU-"));
        assert!(r["gpu"]["sm_count"].as_u64().unwrap() > 0);
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn streams_mode_records_one_lane_per_stream_and_they_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    let r = sharebench()
        .args([
            "run",
            "--mode",
            "streams",
            "--streams",
            "3",
            "--blocks",
            "8",
            "--kernels",
            "30",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = sharebench().args(["report", "--json", out.to_str().unwrap()]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let g = &v["groups"][0];
    assert_eq!(g["workers_reported"], 3);
    assert!(g["overlap_fraction"].as_f64().unwrap() > 0.5, "{g}");
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn timeslice_mode_is_verified_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let r = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", dir.path())
        .args(["run", "--mode", "timeslice", "--kernels", "5"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["sharing"]["verdict"], "no_daemon");
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn mps_mode_refuses_to_run_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let r = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", dir.path())
        .args(["run", "--mode", "mps", "--kernels", "5"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("refusing to measure"), "{stderr}");
    assert!(r.stdout.is_empty());
}

/// A plan worker under MPS: its index picks its group in the scenario, and the SLO group's neighbours get the
/// plan's active thread percentage (the context then sees a share of the SMs); the SLO group keeps them all.
#[test]
#[ignore = "needs an NVIDIA GPU and nvidia-cuda-mps-control"]
fn a_scenario_worker_takes_its_group_and_its_share_of_the_sms() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"s\"\nslo_group = \"latency\"\n[[group]]\nname = \"latency\"\nkernel = \"tiny\"\narrivals = \"fixed\"\n\
         rate = 200\npods = 1\n[[group]]\nname = \"batch\"\nkernel = \"fma\"\nblocks = 64\niters = 1000\npods = \"sweep\"\n",
    )
    .unwrap();
    let daemon = PrivateDaemon::start();
    let worker = |index: &str| {
        let out = sharebench()
            .args(["run", "--mode", "mps", "--scenario", scenario.to_str().unwrap(), "--scenario-pods", "1"])
            .args(["--workers", "2", "--worker-index", index, "--neighbour-atp", "25", "--duration", "1s"])
            .env("CUDA_MPS_PIPE_DIRECTORY", &daemon.pipe)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (latency, batch) = (worker("0"), worker("1"));
    drop(daemon);
    for (ok, _, stderr) in [&latency, &batch] {
        assert!(ok, "{stderr}");
    }
    let (latency, batch): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&latency.1).unwrap(), serde_json::from_str(&batch.1).unwrap());
    assert_eq!((latency["group"].as_str(), latency["config"]["kernel"].as_str()), (Some("latency"), Some("tiny")));
    assert!(latency["config"]["arrivals"].to_string().contains("200"), "{}", latency["config"]["arrivals"]);
    assert!(latency["config"]["mps_active_thread_percentage"].is_null());
    assert_eq!((batch["group"].as_str(), batch["config"]["blocks"].as_u64()), (Some("batch"), Some(64)));
    assert_eq!(batch["config"]["mps_active_thread_percentage"], 25);
    // Under an active thread percentage both SM attributes report the share; the SLO group's context sees all.
    let seen = batch["gpu"]["context_sm_count"].as_u64().unwrap();
    let all = latency["gpu"]["context_sm_count"].as_u64().unwrap();
    assert!(seen * 3 < all, "a 25% client sees {seen} of {all} SMs");
    assert_eq!(batch["sharing"]["verdict"], "mps_joined");
}

/// Worker 0 samples the GPU through NVML while it measures, and another CUDA process on the GPU (here a
/// sharebench that is not part of the run) is named in the report as another tenant.
#[test]
#[ignore = "needs an NVIDIA GPU and NVML"]
fn worker_0_samples_the_gpu_and_another_tenant_is_named() {
    let mut foreign = sharebench()
        .args(["run", "--kernel", "tiny", "--duration", "6s", "--telemetry", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w0.json");
    let r = sharebench()
        .args(["run", "--kernel", "fma", "--blocks", "16", "--duration", "2s", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    foreign.wait().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let t = &v["telemetry"];
    assert_eq!(t["source"], "nvml", "{t}");
    assert!(t["samples"].as_array().unwrap().len() >= 8, "a sample every 200 ms for 2 s: {t}");
    assert!(t["samples"][4]["sm_mhz"].as_u64().unwrap() > 0);
    assert_eq!(t["own_pid_listed"], true, "{t}");
    let foreign_pid = foreign.id() as u64;
    assert!(t["processes"].as_array().unwrap().iter().any(|p| p["pid"] == foreign_pid), "{t}");
    let report = sharebench().args(["report", "--json", out.to_str().unwrap()]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let problems = report["groups"][0]["conditions"]["problems"].to_string();
    assert!(problems.contains(&format!("pid {foreign_pid} sharebench")), "{problems}");
    // Without the sampler, no telemetry is stored.
    let quiet = run_json(&["--kernel", "tiny", "--kernels", "10", "--telemetry", "off"]);
    assert!(quiet.get("telemetry").is_none());
}

/// `run --exec` with the CUDA tenant, with `pipe` as the pipe directory; the result and the exit code.
fn run_command(pipe: &std::path::Path, mode: &str, tenant: Vec<String>) -> (Option<i32>, serde_json::Value, String) {
    let out = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", pipe)
        .args(["run", "--mode", mode, "--duration", "2s", "--exec", "--"])
        .args(tenant)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_default(), stderr)
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control and python3"]
fn a_cuda_command_that_joins_late_is_proven_an_mps_client_by_its_pid() {
    let daemon = PrivateDaemon::start();
    let (code, r, stderr) = run_command(&daemon.pipe, "mps", common::cuda_tenant(1.0, false));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["sharing"]["verdict"], "mps_joined", "{r:#}");
    assert_eq!(r["sharing"]["proof"], "command-pid+namespace");
    assert_eq!(r["lanes"][0]["device_stamps"], false);
    assert!(r["lanes"][0]["kernels"].as_u64().unwrap() > 100, "{:#}", r["tenant"]);
    assert_eq!(r["tenant"]["ending"], "terminated");
    assert_eq!(r["tenant"]["membership_at_end"]["verdict"], "mps_joined");
    assert!(r["config"]["command"][0] == "python3" && r["config"].get("kernel").is_none());
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control and python3"]
fn a_command_that_falls_back_silently_is_refused_and_time_slicing_is_verified() {
    let daemon = PrivateDaemon::start();
    let (code, _, stderr) = run_command(&daemon.pipe, "mps", common::cuda_tenant(0.0, true));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("refusing to measure: the command is not in mode") && stderr.contains("run without MPS"),
        "{stderr}"
    );
    let empty = tempfile::tempdir().unwrap();
    let (code, r, stderr) = run_command(empty.path(), "timeslice", common::cuda_tenant(0.0, false));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["sharing"]["verdict"], "no_daemon");
    assert!(r["tenant"]["membership_at_ready"]["text"].as_str().unwrap().contains("use time-slicing"));
}

/// `compare --repeat 2 --order shuffled`: fresh workers for every repeat, each result numbered with its repeat,
/// the shuffled order and its seed in compare.json, and the report's figures across both repeats.
#[test]
#[ignore = "needs an NVIDIA GPU and nvidia-cuda-mps-control"]
fn compare_repeats_every_phase_with_fresh_workers_and_reports_across_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = ["compare", "--workers", "2", "--blocks", "16", "--duration", "600ms", "--modes", "timeslice,mps"];
    let done = sharebench()
        .args(args)
        .args([
            "--no-solo",
            "--repeat",
            "2",
            "--order",
            "shuffled",
            "--order-seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&done.stderr));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!((record["repeats"].as_u64(), record["order"].as_str()), (Some(2), Some("shuffled")));
    assert_eq!(record["order_seed"], 7);
    let repeats: Vec<u64> =
        record["phases"].as_array().unwrap().iter().map(|p| p["repeat"].as_u64().unwrap()).collect();
    assert_eq!(repeats, [0, 0, 1, 1]);
    for name in ["w2-mps-0-r1.json", "w2-mps-1-r2.json", "w2-timeslice-0-r2.json"] {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results").join(name)).unwrap()).unwrap();
        let repeat = if name.ends_with("r2.json") { 1 } else { 0 };
        assert_eq!(r["config"]["repeat"], repeat, "{name}");
    }
    // Fresh processes: the pids of one seat differ between repeats.
    let pid = |name: &str| -> u64 {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results").join(name)).unwrap()).unwrap();
        r["host"]["pid"].as_u64().unwrap()
    };
    assert_ne!(pid("w2-mps-0-r1.json"), pid("w2-mps-0-r2.json"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let mps = report["figures"].as_array().unwrap().iter().find(|f| f["key"]["mode"] == "mps").unwrap();
    assert_eq!(mps["repeats"], serde_json::json!([0, 1]));
    assert!(mps["invalid"].as_array().unwrap().is_empty(), "{}", mps["invalid"]);
    assert!(stdout.contains("time-slicing's throughput over 2 repeats"), "{stdout}");
}

/// `compare --exec --observer-effect` (shared window): in each repeat half the Pods run supervised and half
/// alone, swapped in the next repeat, all in one window; each supervised Pod verified an MPS client; the
/// observer table sets the halves side by side.
#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control and python3"]
fn a_shared_observer_window_measures_supervised_and_alone_pods_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let done = sharebench()
        .args(["compare", "--modes", "mps", "--workers", "4", "--no-solo", "--repeat", "2", "--duration", "1s"])
        .args(["--out", out.to_str().unwrap(), "--exec", "--observer-effect", "--"])
        .args(common::cuda_tenant(0.0, false))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{}\n{stderr}", String::from_utf8_lossy(&done.stdout));
    let read = |sub: &str, name: &str| -> serde_json::Value {
        let path = out.join(sub).join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))).unwrap()
    };
    for (repeat, supervised, alone) in [(1, [0, 2], [1, 3]), (2, [1, 3], [0, 2])] {
        let window = read("results", &format!("w4-mps-{}-r{repeat}", supervised[0]))["started_unix_ns"].clone();
        for i in supervised {
            let r = read("results", &format!("w4-mps-{i}-r{repeat}"));
            assert_eq!(r["sharing"]["verdict"], "mps_joined", "{r:#}");
            assert_eq!(r["config"]["alone_indices"], serde_json::json!(alone));
            assert_eq!(r["started_unix_ns"], window, "one window for the supervised Pods");
        }
        for i in alone {
            let r = read("alone", &format!("w4-mps-{i}-r{repeat}"));
            assert_eq!(r["status"]["complete"], true, "{r:#}");
            assert_eq!(r["started_unix_ns"], window, "the alone Pods measured in the supervised Pods' window");
            assert!(r["tenant"]["requests_in_window"].as_u64().unwrap() > 10, "{:#}", r["tenant"]);
        }
    }
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("observer-effect.json")).unwrap()).unwrap();
    assert_eq!(rows[0]["design"], "shared-window", "{rows:#}");
    assert_eq!((rows[0]["pods_supervised"].as_u64(), rows[0]["pods_alone"].as_u64()), (Some(2), Some(2)));
    assert_eq!(rows[0]["repeats"], serde_json::json!([0, 1]));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("2 of 4 (2 alone)"), "{report}");
}

/// The memory a worker may use, and a hold: an MPS client under a 2 GiB pinned limit asking for 8 GiB gets
/// less than 2 GiB, stopped by its limit; under time-slicing the same limit binds nothing and 1 GiB is held.
#[test]
#[ignore = "needs an NVIDIA GPU and nvidia-cuda-mps-control"]
fn a_memory_hold_is_stopped_by_the_mps_limit_and_not_under_time_slicing() {
    let daemon = PrivateDaemon::start();
    let out = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", &daemon.pipe)
        .env("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=2G")
        .args(["run", "--mode", "mps", "--kernel", "tiny", "--kernels", "50", "--hold-memory", "8G"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &r["gpu"]["context_memory"];
    assert_eq!(m["limit_source"], "client-environment", "{m:#}");
    assert_eq!(m["limit_bytes"], 2u64 << 30);
    assert!(m["free_bytes"].as_u64().unwrap() < 2 << 30, "free is capped under the limit: {m:#}");
    let held = m["held"]["held_bytes"].as_u64().unwrap();
    assert!(held > 0 && held < 2 << 30, "{m:#}");
    assert!(m["held"]["stopped_by"].as_str().unwrap().contains("CUDA_ERROR_OUT_OF_MEMORY"), "{m:#}");
    assert!(stderr.contains("stopped by its MPS limit of 2.0 GiB"), "{stderr}");
    let empty = tempfile::tempdir().unwrap();
    let out = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", empty.path())
        .env("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=2G")
        .args(["run", "--mode", "timeslice", "--kernel", "tiny", "--kernels", "50", "--hold-memory", "3G"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &r["gpu"]["context_memory"];
    assert_eq!((m["limit_source"].as_str(), m["setting"].as_str()), (Some("not-enforced"), Some("0=2G")), "{m:#}");
    assert_eq!(m["held"]["held_bytes"], 3u64 << 30, "more than the limit: nothing enforces it");
}

/// An example tenant of `bench/tenants/`, found from the repository root (where the device runs the suite) or
/// from this crate.
fn example_tenant(name: &str) -> String {
    let from_root = std::path::Path::new("bench/tenants").join(name);
    if from_root.exists() {
        return from_root.display().to_string();
    }
    format!("{}/tenants/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `greedy_memory.py` (the tenant twin of `--hold-memory`) under an MPS limit of 2 GiB: it takes what the limit
/// lets it, says what stopped it, and goes on serving.
#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control and python3 with torch"]
fn the_greedy_memory_tenant_is_stopped_by_its_mps_limit_and_keeps_serving() {
    let daemon = PrivateDaemon::start();
    let out = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", &daemon.pipe)
        .env("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=2G")
        .args(["run", "--mode", "mps", "--duration", "3s", "--exec", "--", "python3"])
        .args([example_tenant("greedy_memory.py").as_str(), "--gib", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let line = stderr.lines().find(|l| l.contains("greedy_memory: held")).expect("the tenant says what it held");
    let held: f64 = line.split("held ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(held > 0.5 && held < 2.0, "under its 2 GiB limit: {line}");
    assert!(line.contains("stopped by"), "{line}");
    assert_eq!(r["sharing"]["verdict"], "mps_joined", "{r:#}");
    assert!(r["tenant"]["requests_in_window"].as_u64().unwrap() > 10, "it kept serving: {:#}", r["tenant"]);
}

/// `llm.py`, small, at 8 requests/s under MPS: its streamed requests give the result TTFT and TPOT histograms
/// and output tokens.
#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control and python3 with torch"]
fn the_llm_tenant_streams_requests_with_their_first_token_and_tokens() {
    let daemon = PrivateDaemon::start();
    let small = ["--layers", "2", "--d-model", "256", "--heads", "4", "--vocab", "1000"];
    let out = sharebench()
        .env("CUDA_MPS_PIPE_DIRECTORY", &daemon.pipe)
        .args(["run", "--mode", "mps", "--duration", "4s", "--rate", "8", "--exec", "--", "python3"])
        .arg(example_tenant("llm.py"))
        .args(small)
        .args(["--prompt-min", "16", "--prompt-max", "64", "--output-min", "4", "--output-max", "16"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &r["tenant"];
    assert!(t["requests_in_window"].as_u64().unwrap() >= 10, "{t:#}");
    assert!(t["tokens"].as_u64().unwrap() >= 4 * t["requests_in_window"].as_u64().unwrap(), "{t:#}");
    assert!(t["ttft_histogram"].is_string() && t["tpot_histogram"].is_string(), "{t:#}");
    assert_eq!(t["protocol_errors"], 0);
}
