//! The real binary on a machine without a GPU: clear errors, the right exit codes, never a panic.

use assert_cmd::Command;

fn sharebench() -> Command {
    let mut cmd = Command::cargo_bin("sharebench").unwrap();
    // No driver is visible to these tests, even on a GPU machine.
    cmd.env("LD_LIBRARY_PATH", "/nonexistent").env_remove("JOB_COMPLETION_INDEX");
    cmd
}

/// Whether this machine has no NVIDIA driver, as CI's has not. On a machine with one, `LD_LIBRARY_PATH` cannot
/// hide libcuda (the loader's cache finds it), so the tests of a missing driver say they are skipped rather than
/// pass without testing anything; the GPU tests (`tests/gpu.rs`) cover that machine.
fn no_gpu() -> bool {
    let none = !std::path::Path::new("/dev/nvidiactl").exists();
    if !none {
        eprintln!("skipped: this machine has an NVIDIA driver, and this test is of a machine without one");
    }
    none
}

#[test]
fn run_without_a_driver_is_one_clear_line_and_exit_1() {
    if !no_gpu() {
        return;
    }
    let out = sharebench().args(["run", "--kernels", "5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("sharebench: error: no NVIDIA driver: libcuda.so could not be loaded"), "{stderr}");
    assert!(stderr.contains("fix: run on a machine with an NVIDIA GPU"));
    assert!(!stderr.contains("panicked"));
    assert!(out.stdout.is_empty());
}

#[test]
fn compare_and_calibrate_without_a_driver_fail_cleanly() {
    if !no_gpu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["compare", "--out", dir.path().join("c").to_str().unwrap()], vec!["calibrate"]] {
        let out = sharebench().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("no NVIDIA driver") && !stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_flags_name_the_flag_before_touching_the_gpu() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--blocks", "0"], "--blocks"),
        (&["run", "--threads", "2048"], "--threads"),
        (&["run", "--kernels", "0"], "--kernels"),
        (&["run", "--kernel", "stream", "--bytes", "100"], "--bytes"),
        (&["run", "--streams", "3"], "--streams"),
        (&["run", "--workers", "2", "--worker-index", "5"], "--worker-index"),
        (&["compare", "--workers", "0"], "--workers"),
        (&["compare", "--workers", "64"], "the MPS server takes at most 48"),
        (&["run", "--kernel", "gemm"], "valid: fma, stream, tiny"),
        (&["run", "--duration", "soon"], "not a duration"),
        (&["compare", "--gpus", "0,0"], "GPU 0 is listed twice"),
        (&["compare", "--gpus", "0,x"], "not a GPU ordinal"),
        (&["compare", "--gpus", "0,1", "--gpu", "1"], "cannot be used with"),
        (&["run", "--scenario", "s.toml", "--kernel", "tiny"], "cannot be used with"),
        (&["run", "--scenario-pods", "2"], "--scenario"),
        (&["run", "--hold-memory", "lots"], "'lots' is not a size"),
        (&["run", "--hold-memory", "8G", "--exec", "--", "true"], "a command takes its own memory"),
        (&["plan", "s.toml", "--slo-p99", "5", "--kubernetes", "gpu"], "MODE=OVERLAY"),
    ];
    for (args, needle) in cases {
        let out = sharebench().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn an_existing_out_file_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("r.json");
    std::fs::write(&out_file, "keep").unwrap();
    let out = sharebench().args(["run", "--out", out_file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("already exists"));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "keep");
}

#[test]
fn check_without_a_daemon_reports_time_slicing() {
    let dir = tempfile::tempdir().unwrap();
    let out = sharebench()
        .args(["check", "--pipe-dir", dir.path().join("missing").to_str().unwrap(), "--mps-control", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("does not exist"), "{stdout}");
    assert!(stdout.contains("verdict: no daemon: time-slicing"), "{stdout}");
    // Expecting time-slicing: no daemon, but no GPU either (these tests see no driver), so it cannot be verified.
    let out = sharebench()
        .args(["check", "--expect", "timeslice", "--pipe-dir", dir.path().join("missing").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A stand-in for an external program: a shell script with this body.
fn fake_program(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A stand-in control client on PATH for the failure paths of the check.
fn fake_control(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    fake_program(dir, "nvidia-cuda-mps-control", body)
}

#[test]
fn check_failure_paths_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe");
    std::fs::create_dir(&pipe).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(pipe.join("control")).unwrap();
    let cases = [
        ("echo 'Cannot find MPS control daemon process'; exit 1", "stale socket", 4),
        ("exec sleep 20", "hung", 4),
        ("echo 'connect: Connection refused'", "Connection refused", 4),
        ("echo 'Transport endpoint is not connected'", "Transport endpoint", 4),
        ("echo 'Server not found'", "could not create a CUDA context", 1),
    ];
    for (body, needle, code) in cases {
        let fake = fake_control(dir.path(), body);
        let out = sharebench()
            .args([
                "check",
                "--pipe-dir",
                pipe.to_str().unwrap(),
                "--mps-control",
                fake.to_str().unwrap(),
                "--mps-timeout",
                "500ms",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains(needle), "{body}: {stdout}");
        assert_eq!(out.status.code(), Some(code), "{body}: {stdout}");
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let fake = fake_control(dir.path(), "echo 'Cannot find MPS control daemon process'; exit 1");
    let out = sharebench()
        .args(["check", "--pipe-dir", empty.to_str().unwrap(), "--mps-control", fake.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "no_daemon");
    assert!(report["steps"][0]["summary"].as_str().unwrap().contains("holds no control socket (empty)"));
}

#[test]
fn report_refuses_bad_input_and_keep_going_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"format\":\"sharebench-result\",\"schema_version\":1,").unwrap();
    let out = sharebench().args(["report", dir.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bad.json:1: not valid JSON") && stderr.contains("--keep-going"), "{stderr}");
    let out = sharebench().args(["report", "-"]).write_stdin("just logs\n").output().unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("stdin holds no sharebench result lines"));
}

/// A kubectl double for `plan --kubernetes`: every call is logged; the Job of the 1-Pod point completes and its
/// Pod prints a real H100 result under the point's run id (read from the point's patch); the 2-Pod point's Job
/// fails.
#[test]
fn a_kubernetes_plan_applies_follows_collects_and_deletes_each_point() {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let fixture = format!("{root}/results/h200/repeats/plan-inference/points/timeslice-1/r1/results.jsonl.gz");
    let calls = dir.path().join("calls");
    let kubectl = fake_program(
        dir.path(),
        "kubectl",
        &format!(
            r#"echo "$@" >> {calls}
case "$1 $2" in
  "apply -k") echo "$3" > {state}; echo job.batch/sharebench created ;;
  "get job")
    case "$*" in *ignore-not-found*) exit 0 ;; esac
    case "$(cat {state})" in
      */timeslice-1) echo '{{"kind":"Job","status":{{"succeeded":1,"conditions":[{{"type":"Complete","status":"True"}}]}}}}' ;;
      *) echo '{{"kind":"Job","status":{{"failed":1,"conditions":[{{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}}]}}}}' ;;
    esac ;;
  "logs -l")
    point=$(cat {state})
    run=$(grep -o '"plan-inference-[a-z0-9]*-timeslice-1"' "$point/point-patch.json" | head -1 | tr -d '"')
    case "$point" in */timeslice-1) printf '[pod/sharebench-0-abcde/worker] '; zcat {fixture} | sed "s/plan-inference-[a-z0-9]*-timeslice-1/$run/" ;; esac ;;
  "delete -k") ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac"#,
            calls = calls.display(),
            state = dir.path().join("applied").display(),
        ),
    );
    let out = dir.path().join("plan");
    let overlay = format!("timeslice={root}/manifests/overlays/dra-timeslicing");
    let scenario = format!("{root}/bench/scenarios/inference.toml");
    let assert = sharebench()
        .args(["plan", &scenario, "--slo-p99", "1000", "--modes", "timeslice", "--max-pods", "2", "--repeat", "1"])
        .args(["--kubernetes", &overlay, "--kubectl", kubectl.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .assert()
        .code(5);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("timeslice: at most 1 Pod per GPU meets the SLO"), "{stdout}");
    assert!(stdout.contains("ran as Kubernetes Jobs"), "{stdout}");
    let plan = std::fs::read_to_string(out.join("plan.json")).unwrap();
    assert!(
        plan.contains("BackoffLimitExceeded") && plan.contains("completion index 0-1 reported no result"),
        "{plan}"
    );
    assert!(
        out.join("points/timeslice-1/results.jsonl").is_file() && out.join("points/timeslice-1/pods.log").is_file()
    );
    let calls = std::fs::read_to_string(calls).unwrap();
    let applied = calls.lines().filter(|l| l.starts_with("apply -k")).count();
    let deleted =
        calls.lines().filter(|l| l.starts_with("delete -k") && l.contains("-l sharebench.dev/keep!=true")).count();
    assert_eq!((applied, deleted), (2, 2), "{calls}");
    assert!(std::fs::read_to_string(out.join("points/timeslice-2/kustomization.yaml"))
        .unwrap()
        .contains("dra-timeslicing"));
    // With repeats, one Job per repeat: each its own overlay, all with one run id, each worker told its repeat.
    let dry = dir.path().join("dry");
    sharebench()
        .args(["plan", &scenario, "--slo-p99", "5", "--modes", "timeslice", "--max-pods", "1", "--repeat", "2"])
        .args(["--kubernetes", &overlay, "--dry-run", "--out", dry.to_str().unwrap()])
        .assert()
        .success();
    let patch =
        |r: u32| std::fs::read_to_string(dry.join(format!("points/timeslice-1/r{r}/point-patch.json"))).unwrap();
    let (first, second) = (patch(1), patch(2));
    fn arg_after(v: &serde_json::Value, flag: &str) -> Option<String> {
        match v {
            serde_json::Value::Array(items) => {
                let at = items.iter().position(|x| x == flag);
                at.and_then(|i| items.get(i + 1))
                    .and_then(|x| x.as_str())
                    .map(String::from)
                    .or_else(|| items.iter().find_map(|x| arg_after(x, flag)))
            }
            serde_json::Value::Object(map) => map.values().find_map(|x| arg_after(x, flag)),
            _ => None,
        }
    }
    let (first, second): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&first).unwrap(), serde_json::from_str(&second).unwrap());
    let arg_after = |v: &serde_json::Value, flag: &str| arg_after(v, flag).unwrap_or_default();
    assert_eq!((arg_after(&first, "--repeat"), arg_after(&second, "--repeat")), ("0".into(), "1".into()));
    assert_eq!(arg_after(&first, "--run-id"), arg_after(&second, "--run-id"));
    // The overlay a dry run writes names its base relative to itself, not to where plan ran: it builds from anywhere.
    let point = dry.join("points/timeslice-1/r1");
    let kustomization = std::fs::read_to_string(point.join("kustomization.yaml")).unwrap();
    let base = kustomization.split("resources:\n  - ").nth(1).and_then(|r| r.lines().next()).unwrap();
    assert!(!base.starts_with('/'), "{base}");
    assert_eq!(
        point.join(base).canonicalize().unwrap(),
        std::path::Path::new(&format!("{root}/manifests/overlays/dra-timeslicing")).canonicalize().unwrap()
    );
}

#[test]
fn a_kubernetes_plan_refuses_to_meet_an_existing_job() {
    let dir = tempfile::tempdir().unwrap();
    let kubectl = fake_program(dir.path(), "kubectl", "echo job.batch/sharebench");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let assert = sharebench()
        .args(["plan", &format!("{root}/bench/scenarios/inference.toml"), "--slo-p99", "5", "--modes", "mps"])
        .args([
            "--kubernetes",
            &format!("mps={root}/manifests/overlays/dra-mps"),
            "--kubectl",
            kubectl.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("p").to_str().unwrap()])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("a Job named sharebench already exists") && stderr.contains("fix:"), "{stderr}");
}

/// A real H200 result (2 MPS workers of 16-block fma, worker `index`, the first repeat), as JSON.
fn h200_result(index: u32) -> serde_json::Value {
    let path = format!("{}/../results/h200/repeats/reference-16/results/results.jsonl.gz", env!("CARGO_MANIFEST_DIR"));
    let text = sharebench::load::files::read_text(std::path::Path::new(&path)).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|r| {
            r["mode"] == "mps"
                && r["config"]["workers"] == 2
                && r["config"]["worker_index"] == index
                && r["config"]["repeat"] == 0
        })
        .unwrap()
}

#[test]
fn a_corrupted_record_is_refused_with_file_worker_and_index() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let mut bad = h200_result(1);
    let data = bad["lanes"][0]["records"]["data"].as_str().unwrap();
    let mut bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
    bytes[2 * 24..3 * 24].fill(0xFF); // record 2: every field at its maximum, still valid base64
    bad["lanes"][0]["records"]["data"] = base64::engine::general_purpose::STANDARD.encode(&bytes).into();
    std::fs::write(dir.path().join("w1.json"), bad.to_string()).unwrap();
    std::fs::write(dir.path().join("w0.json"), h200_result(0).to_string()).unwrap();
    let out = sharebench().args(["report", dir.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("w1.json: worker 1, kernel record 2: ran on 65535 SMs, but the GPU has 132"), "{stderr}");
    let out = sharebench().args(["report", "--keep-going", dir.path().to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("excluded: ") && stdout.contains("w1.json: worker 1, kernel record 2"), "{stdout}");
    assert!(stdout.contains("1 of 2"), "only the valid worker is reported: {stdout}");
}

/// Two invocations of one run id a day apart, two workers each; `second` edits the second one's results.
fn two_invocations(dir: &std::path::Path, second: impl Fn(&mut serde_json::Value)) {
    for (name, shift) in [("a", 0u64), ("b", 86_400_000_000_000)] {
        for index in 0..2 {
            let mut r = h200_result(index);
            if name == "b" {
                second(&mut r);
            }
            for field in ["started_unix_ns", "finished_unix_ns"] {
                r[field] = (r[field].as_u64().unwrap() + shift).into();
            }
            let base = r["lanes"][0]["records"]["host_base_unix_ns"].as_u64().unwrap();
            r["lanes"][0]["records"]["host_base_unix_ns"] = (base + shift).into();
            std::fs::write(dir.join(format!("{name}-w{index}.json")), r.to_string()).unwrap();
        }
    }
}

#[test]
fn results_that_share_a_run_id_but_not_a_run_are_reported_apart() {
    // The same run id from two invocations of different configurations a day apart (as two plans once named
    // their points alike).
    let dir = tempfile::tempdir().unwrap();
    two_invocations(dir.path(), |r| r["config"]["warmup"] = 3.into());
    let out = sharebench().args(["report", "--json", dir.path().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "two runs, never one run of 4 of 2 workers");
    assert!(groups.iter().all(|g| g["workers_reported"] == 2), "{groups:?}");
    let note = report["notes"][0].as_str().unwrap();
    assert!(note.contains("names 2 separate runs") && note.contains("/a-w") && note.contains("/b-w"), "{note}");
}

#[test]
fn separately_run_jobs_of_one_configuration_are_combined_as_repeats_and_said_so() {
    // The same Job applied twice (or one Job per repeat): one run with two repeats, the figures across them.
    let dir = tempfile::tempdir().unwrap();
    two_invocations(dir.path(), |r| {
        r["config"]["command_line"] = serde_json::json!(["sharebench", "run", "--out", "elsewhere"])
    });
    let out = sharebench().args(["report", "--json", dir.path().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let note = report["notes"][0].as_str().unwrap();
    assert!(note.contains("2 separately run sets") && note.contains("combined as repeats 1-2"), "{note}");
    let figures = report["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0]["repeats"], serde_json::json!([0, 1]));
    assert_eq!(figures[0]["throughput"]["values"].as_array().unwrap().len(), 2);
}

#[test]
fn a_report_piped_into_a_reader_that_stops_early_ends_quietly() {
    // `sharebench report results | head -1`: the reader goes away; no "internal error", no panic's exit 101.
    use std::process::Stdio;
    let tree = format!("{}/../results", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sharebench"))
        .args(["report", &tree])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("internal error") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

#[test]
fn a_barrier_server_without_a_run_id_or_token_is_refused_before_anything_starts() {
    let out = sharebench()
        .args(["run", "--workers", "2", "--barrier", "127.0.0.1:7777", "--barrier-listen", "127.0.0.1:7777"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--barrier-listen") && stderr.contains("needs --run-id"), "{stderr}");
}

#[test]
fn hostile_identities_and_bytes_are_reported_not_crashed_on() {
    // Two runs whose GPU uuids hold a non-ASCII character (once a panic at a char boundary), a run id with a
    // terminal escape sequence, and kubectl logs on stdin with a stray 0xFF byte: each reported, nothing lost.
    let dir = tempfile::tempdir().unwrap();
    for (run, uuid) in [("run-a\u{1b}]0;owned\u{7}", "GPU-ec48855é-e068"), ("run-b", "GPU-ec48855é-e069")] {
        for index in 0..2 {
            let mut r = h200_result(index);
            r["run_id"] = run.into();
            r["gpu"]["uuid"] = uuid.into();
            std::fs::write(dir.path().join(format!("{}-{index}.json", &run[..5])), r.to_string()).unwrap();
        }
    }
    let out = dir.path().join("report");
    let done =
        sharebench().args(["report", dir.path().to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&done.stderr));
    assert!(!stdout.contains('\u{1b}') && stdout.contains("run-a\\x1b]0;owned\\x07"), "{stdout}");
    let folders = std::fs::read_dir(out.join("runs")).unwrap().count();
    assert_eq!(folders, 2, "one chart folder per run");
    // Result lines as the workers print them (the format marker first), from the committed results.
    let path = format!("{}/../results/h200/repeats/reference-16/results/results.jsonl.gz", env!("CARGO_MANIFEST_DIR"));
    let text = sharebench::load::files::read_text(std::path::Path::new(&path)).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"mode\":\"mps\"") && l.contains("\"workers\":2,") && l.contains("\"repeat\":0,"))
        .collect();
    assert_eq!(lines.len(), 2);
    let mut logs = b"[pod/sb-0] starting \xff\xfe\n".to_vec();
    logs.extend(format!("[pod/sb-0] {}\n[pod/sb-1] {}\n", lines[0], lines[1]).as_bytes());
    let piped = sharebench().args(["report", "-"]).write_stdin(logs).output().unwrap();
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(String::from_utf8_lossy(&piped.stdout).contains("2/2"), "both results read past the stray byte");
}

#[test]
fn check_expecting_time_slicing_does_not_pass_where_no_cuda_context_can_run() {
    // As a Pod's probe, `check --expect timeslice` must fail a Pod that has no GPU: no daemon is not enough.
    let out = sharebench()
        .args(["check", "--expect", "timeslice", "--pipe-dir", "/nonexistent-sharebench"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("no CUDA context could run"), "{stdout}");
}

#[test]
fn a_failed_plan_leaves_no_directory_the_user_did_not_ask_for() {
    if !no_gpu() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/inference.toml");
    for _ in 0..2 {
        // Twice in a row: the second try must fail for the same reason, not on a stray directory.
        let out = sharebench()
            .current_dir(cwd.path())
            .args(["plan", scenario.to_str().unwrap(), "--slo-p99", "5", "--max-pods", "2"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("no NVIDIA driver") && !stderr.contains("not empty"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn the_command_line_is_consistent_units_headings_short_flags_and_no_misleading_tips() {
    // A negative time is named as such, not met with clap's tip to put it after `--` (which starts a command).
    for args in [vec!["run", "--duration", "-1s"], vec!["compare", "--barrier-timeout", "-5s"]] {
        let out = sharebench().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("is negative") && !stderr.contains("'-- -1"), "{args:?}: {stderr}");
    }
    // Every time flag takes units, the SLO too (a plain number stays milliseconds).
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/inference.toml");
    for slo in ["5ms", "0.005s", "5"] {
        let out = sharebench()
            .args(["plan", scenario.to_str().unwrap(), "--slo-p99", slo, "--max-pods", "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("--max-pods") && !stderr.contains("--slo-p99"), "{slo}: {stderr}");
    }
    // Checked before the GPU: addresses and deadlines.
    for (args, flag) in [
        (vec!["run", "--barrier", "notahostport"], "--barrier"),
        (vec!["run", "--barrier", "host:99999"], "--barrier"),
        (vec!["run", "--mps-timeout", "0s"], "--mps-timeout"),
    ] {
        let out = sharebench().args(&args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag) && !stderr.contains("no NVIDIA driver"), "{args:?}: {stderr}");
    }
    // The 48-client limit is MPS's, per GPU: time-slicing may run 49 workers.
    let out = sharebench().args(["compare", "--modes", "timeslice", "--workers", "49"]).output().unwrap();
    assert!(!String::from_utf8(out.stderr).unwrap().contains("1..=48"));
    // Help in sections, with short flags for the common options.
    let help = String::from_utf8(sharebench().args(["run", "--help"]).output().unwrap().stdout).unwrap();
    for part in ["Workload:", "MPS:", "-o, --out", "-m, --mode", "-d, --duration", "-n, --kernels", "-w, --workers"] {
        assert!(help.contains(part), "run --help lacks {part:?}");
    }
    let help = String::from_utf8(sharebench().args(["plan", "--help"]).output().unwrap().stdout).unwrap();
    assert!(help.contains("Kubernetes:") && !help.contains("(`--exec`)"), "{help}");
}

#[test]
fn bad_input_is_named_with_what_a_result_is_and_keep_going_lists_what_it_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, "{\"a\": 1}\n").unwrap();
    let out = sharebench().args(["report", foreign.to_str().unwrap(), "--keep-going"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("all 1 input(s) were excluded"), "{stderr}");
    assert!(stderr.contains("foreign.json: holds no sharebench result"), "names what it excluded: {stderr}");
    assert!(stderr.contains("a result is the JSON document one worker writes"), "{stderr}");
}

#[test]
fn plan_pages_are_written_again_from_plan_json_and_no_committed_plan_contradicts_itself() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let plan = root.join("results/h200/repeats/plan-inference/plan.json");
    std::fs::copy(&plan, dir.path().join("plan.json")).unwrap();
    let out = sharebench().args(["plan-pages", dir.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for page in ["plan.txt", "plan.md", "plan.csv", "plan.html", "capacity.svg"] {
        assert!(dir.path().join(page).is_file(), "{page} written");
    }
    let md = std::fs::read_to_string(dir.path().join("plan.md")).unwrap();
    assert!(md.contains("mps: at least 6 Pods per GPU meet the SLO"), "{md}");
    // Every committed plan page says "at least" exactly where the most tried point still met the SLO.
    for entry in walk(&root.join("results")) {
        if entry.file_name().is_some_and(|n| n == "plan.md" || n == "plan.txt") {
            let text = std::fs::read_to_string(&entry).unwrap();
            for line in text.lines() {
                assert!(!(line.contains("at most") && line.contains("the most tried")), "{}: {line}", entry.display());
                assert!(!line.contains(" 1 Pods per GPU"), "{}: {line}", entry.display());
            }
        }
    }
    // A directory without a plan is named.
    let err = sharebench().args(["plan-pages", "/nonexistent"]).output().unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("plan.json"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The committed blast-radius run of the H100 (results/h100/faults/gpu-fault): the report says in words that
/// under MPS the three others went down with the faulting worker and under time-slicing all three survived and
/// were served again within milliseconds.
#[test]
fn a_neighbours_fault_is_told_in_words_from_the_committed_h100_run() {
    let dir = tempfile::tempdir().unwrap();
    let results = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/h100/faults/gpu-fault/results");
    let out = sharebench().args(["report", results, "--keep-going", "--out"]).arg(dir.path()).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 5), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let section = &md[md.find("## Isolation").expect("an isolation section")..];
    assert!(section.contains("0 of 3 other workers survived the fault; 3 did not"), "{section}");
    assert!(section.contains("3 of 3 other workers survived the fault\n"), "{section}");
    assert!(section.contains("worker 2: served again 2.18 ms after the fault"), "{section}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>Isolation: what a neighbour"));
}
