//! GPU tests: run on a machine with an NVIDIA GPU, with `--ignored` (see the README). They drive the real
//! binary (`SHAREBENCH_BIN`, else the one cargo built) and check what it recorded.

use std::process::Command;

fn sharebench() -> Command {
    let bin = std::env::var("SHAREBENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sharebench").to_string());
    let mut cmd = Command::new(bin);
    cmd.env_remove("JOB_COMPLETION_INDEX");
    cmd
}

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
