//! `sharebench report` on real results captured on an H100 (results/h100) and an H200 (results/h200), through the
//! real binary: the figures a reader relies on must come out of them, from a directory, from files and from
//! `kubectl logs` on stdin.

use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn results() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/h100")
}

/// The repeated runs on the H200.
fn repeats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/h200/repeats")
}

fn figures<'a>(report: &'a Value, mode: &str, workers: u64) -> &'a Value {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["mode"] == mode && g["key"]["workers"] == workers)
        .unwrap()
}

fn report_json(args: &[&str], stdin: Option<String>) -> Value {
    let mut cmd = Command::cargo_bin("sharebench").unwrap();
    cmd.arg("report").arg("--json").args(args);
    if let Some(text) = stdin {
        cmd.write_stdin(text);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success() || out.status.code() == Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn group<'a>(report: &'a Value, mode: &str, workers: u64) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["mode"] == mode && g["key"]["workers"] == workers)
        .unwrap()
}

#[test]
fn small_kernels_share_under_mps_and_never_overlap_under_time_slicing() {
    let dir = repeats().join("reference-16/results");
    let r = report_json(&[dir.to_str().unwrap()], None);
    for workers in [2, 4, 8] {
        let (ts, mps) = (figures(&r, "timeslice", workers), figures(&r, "mps", workers));
        assert_eq!(ts["overlap_fraction"]["max"], 0.0, "time-slicing never overlaps ({workers} workers)");
        assert!(mps["overlap_fraction"]["min"].as_f64().unwrap() > 0.9);
        assert_eq!(mps["repeats"].as_array().unwrap().len(), 5);
        assert!(mps["invalid"].as_array().unwrap().is_empty(), "{}", mps["invalid"]);
        assert_eq!(group(&r, "mps", workers)["verified_workers"], workers);
    }
    let c = r["comparisons"].as_array().unwrap().iter().find(|c| c["workers"] == 4).unwrap();
    let ratio = &c["mps_over_timeslice"];
    assert!((4.0..5.5).contains(&ratio["median"].as_f64().unwrap()), "MPS / time-slicing at 4 workers: {ratio}");
    assert!(ratio["across"]["low"].as_f64().unwrap() > 1.0 && ratio["min"].as_f64().unwrap() > 1.0);
    assert_eq!(ratio["within_run"].as_array().unwrap().len(), 5);
}

#[test]
fn a_full_gpu_kernel_gains_only_the_switch_cost() {
    let dir = repeats().join("compare-default/results");
    let r = report_json(&[dir.to_str().unwrap()], None);
    let c = &r["comparisons"][0];
    let ratio = c["mps_over_timeslice"]["median"].as_f64().unwrap();
    assert!((1.15..1.35).contains(&ratio), "{ratio}");
    let streams = c["mps_over_streams"]["median"].as_f64().unwrap();
    assert!((0.95..1.05).contains(&streams), "{streams}");
    let solo = figures(&r, "timeslice", 1);
    assert_eq!(solo["repeats"], serde_json::json!([0, 1, 2]));
    assert!(solo["samples"].as_u64().unwrap() > 3 * 1000, "1 s a repeat of ~0.6 ms kernels: {}", solo["samples"]);
    let slowdown = figures(&r, "timeslice", 4)["slowdown_vs_solo"]["median"].as_f64().unwrap();
    assert!((4.0..5.5).contains(&slowdown), "{slowdown}");
}

#[test]
fn a_noisy_tenant_names_a_winner_only_where_its_repeats_agree() {
    // ResNet-50 at 4 and 8 Pods, 5 repeats each on the H200: throughput MPS > time-slicing in every repeat at both
    // counts; p99 better under MPS in every repeat at 4 Pods, but not at 8.
    let out = Command::cargo_bin("sharebench")
        .unwrap()
        .arg("report")
        .arg(repeats().join("compare-resnet/results"))
        .output()
        .unwrap();
    // An answer longer than a terminal line continues on indented lines.
    let text = String::from_utf8_lossy(&out.stdout).replace(";\n      ", "; ");
    assert!(out.status.success(), "{text}");
    let line = |n: &str| text.lines().find(|l| l.contains(&format!(", {n} workers: "))).unwrap().to_string();
    assert!(line("4").contains("time-slicing's throughput over 5 repeats, each > 1; MPS lowers p99"), "{}", line("4"));
    assert!(line("8").contains("each > 1; p99: no consistent difference"), "{}", line("8"));
}

#[test]
fn kubectl_logs_on_stdin_give_the_same_report_as_the_files() {
    // Logs of the pod path (each Pod with its isolation, results/h100/pod-isolation), compressed in the repository.
    let pod = results().join("pod-isolation/pod-path");
    let read = |f: &str| sharebench::load::files::read_text(&pod.join(f)).unwrap();
    let logs = [read("logs-timeslicing.txt.gz"), read("logs-mps.txt.gz")].concat();
    let r = report_json(&["-"], Some(logs));
    assert_eq!(r["groups"].as_array().unwrap().len(), 2);
    assert_eq!(group(&r, "mps", 4)["workers_reported"], 4);
    let ratio = r["comparisons"][0]["mps_over_timeslice"]["median"].as_f64().unwrap();
    assert!((4.5..5.1).contains(&ratio), "{ratio}");
}

#[test]
fn a_gpu_fault_under_mps_takes_every_client_down_and_under_time_slicing_only_one() {
    let dir = results().join("faults/gpu-fault/results");
    let r = report_json(&[dir.to_str().unwrap()], None);
    let failed =
        |mode| group(&r, mode, 4)["per_worker"].as_array().unwrap().iter().filter(|w| w["complete"] == false).count();
    assert_eq!(failed("mps"), 4);
    assert_eq!(failed("timeslice"), 1);
}

/// The repository's whole results tree reports as it is: sharebench's own outputs (plans, compare summaries,
/// patches, calibration) are skipped with one note, compressed results are read, nothing needs --keep-going.
#[test]
fn the_whole_results_tree_reports_without_keep_going() {
    let mut cmd = Command::cargo_bin("sharebench").unwrap();
    let out = cmd.arg("report").arg(results().parent().unwrap()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 5)), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("note: skipped ") && stdout.contains("of sharebench's own outputs"), "{stdout}");
    assert!(!stdout.contains("excluded:"), "{stdout}");
    // The answer comes first, a plan is one entry with its capacity answer, and its points follow under it.
    assert!(stdout.starts_with("\nthe answer:\n"), "{}", &stdout[..200.min(stdout.len())]);
    let plan = "plan inference, SLO p99 5 ms, 9 points (";
    let answer_end = stdout.find("\nrun ").or(stdout.find("\n===")).unwrap();
    assert!(stdout[..answer_end].contains(plan), "{}", &stdout[..answer_end]);
    assert!(stdout.contains("mps: at least 6 Pods per GPU meet the SLO"), "{stdout}");
    assert!(stdout.contains(&format!("=== {plan}")), "its points under its heading");
    assert!(stdout.lines().all(|l| l.chars().count() <= 400), "no line runs on");
    // Exit 5 says why.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(5) {
        assert!(stderr.contains("sharebench report: exit 5: ") && stderr.contains("stopped early"), "{stderr}");
    }
}

/// Telemetry recorded on the H100: a CuPy process beside a compare is flagged in every mode and named; results
/// written before telemetry existed (format version 1) still report, with no conditions and no such warning.
#[test]
fn a_foreign_tenant_recorded_on_the_h100_is_flagged_and_named() {
    let dir = results().join("telemetry/compare-foreign/results");
    let r = report_json(&[dir.to_str().unwrap()], None);
    for (mode, workers) in [("timeslice", 1), ("timeslice", 2), ("mps", 2), ("streams", 2)] {
        let c = &group(&r, mode, workers)["conditions"];
        assert_eq!(c["source"], "nvml");
        assert!(c["problems"].to_string().contains("python3, 714 MiB"), "{mode} x{workers}: {c}");
        assert_eq!(c["sm_mhz"], serde_json::json!([1980, 1980]));
    }
    assert!(r["warnings"].as_array().unwrap().iter().any(|w| w["kind"] == "conditions"));
    let old = report_json(&[results().join("faults/gpu-fault/results").to_str().unwrap()], None);
    assert!(group(&old, "mps", 4)["conditions"].is_null());
    assert!(old["warnings"].as_array().unwrap().iter().all(|w| w["kind"] != "conditions"));
}
