//! The scale benchmark's inputs (`bench/examples/synth_results.rs`) pass every check `report` applies: the
//! benchmark measures the report of valid results, not the refusal of corrupted ones, and cannot rot when a check
//! is added.

#[path = "../examples/synth_results.rs"]
mod synth_results;

use assert_cmd::Command;

#[test]
fn synthetic_results_report_without_an_exclusion_or_a_plausibility_refusal() {
    let dir = tempfile::tempdir().unwrap();
    synth_results::generate(&dir.path().join("in"), 8, 2_000);
    let out = Command::cargo_bin("sharebench")
        .unwrap()
        .args(["report", dir.path().join("in").to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("excluded") && !stdout.contains("INVALID"), "{stdout}");
    assert!(stdout.contains("8        mps   1        0/8       16000"), "every record counted: {stdout}");
    assert!(dir.path().join("out/report.json").is_file());
}
