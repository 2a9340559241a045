//! GPU tests of MPS membership where a Pod runs its worker: in a PID namespace of its own with its own /proc
//! (as every Pod without hostPID), with a private IPC namespace too, and as the Job's uid 65532, each against a
//! private MPS daemon. Run as root on a GPU machine with `unshare` and `setpriv` (util-linux):
//! `cargo test --features gpu-tests --test gpu_namespaces -- --ignored`.

mod common;
use common::{make_traversable, PrivateDaemon};
use std::path::Path;
use std::process::{Command, Output};

/// `sharebench ARGS` started as a container runtime starts a Pod's container: new PID namespace (pid 1 inside)
/// with its own /proc, plus the extra `unshare` flags, optionally as uid:gid 65532.
fn in_own_pid_namespace(extra: &[&str], as_65532: bool, pipe: &Path, args: &[&str]) -> Output {
    // The binary must be reachable by uid 65532: a copy in a world-readable directory.
    let dir = tempfile::tempdir().unwrap();
    make_traversable(dir.path());
    let bin = dir.path().join("sharebench");
    std::fs::copy(common::binary(), &bin).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"]).args(extra);
    if as_65532 {
        cmd.args(["setpriv", "--reuid=65532", "--regid=65532", "--clear-groups"]);
    }
    cmd.arg(&bin).args(args).env("CUDA_MPS_PIPE_DIRECTORY", pipe).env_remove("JOB_COMPLETION_INDEX");
    cmd.output().unwrap()
}

fn check_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control, root and unshare"]
fn a_worker_in_its_own_pid_namespace_is_a_proven_mps_client() {
    let daemon = PrivateDaemon::start();
    for (extra, as_65532) in [(&[][..], false), (&["--ipc"][..], false), (&["--ipc", "--uts", "--mount"][..], true)] {
        let out = in_own_pid_namespace(extra, as_65532, &daemon.pipe, &["check", "--json"]);
        let report = check_json(&out);
        assert_eq!(out.status.code(), Some(0), "{extra:?} as 65532 {as_65532}: {report:#}");
        let m = &report["observations"]["membership"];
        assert_eq!(report["observations"]["environment"]["pid"], 1, "pid 1 inside its namespace");
        assert_eq!(m["evidence"]["daemon_in_this_pid_namespace"], false);
        assert_eq!(m["proof"], "exec-affinity+namespace", "{m:#}");
        assert_ne!(m["decision"]["row"]["pid"], 1, "the daemon's pid for it is the node's: {m:#}");
    }
    // A measured run in the same place records how membership was proven.
    let out = in_own_pid_namespace(&["--ipc"], true, &daemon.pipe, &["run", "--mode", "mps", "--kernels", "20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result = check_json(&out);
    assert_eq!(result["sharing"]["verdict"], "mps_joined");
    assert_eq!(result["sharing"]["proof"], "exec-affinity+namespace");
    assert_eq!(result["lanes"][0]["kernels"], 20);
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control, root and unshare"]
fn a_true_fallback_in_its_own_pid_namespace_is_not_joined() {
    let daemon = PrivateDaemon::start();
    let other = PrivateDaemon::start();
    let empty = tempfile::tempdir().unwrap();
    make_traversable(empty.path());
    let checked = daemon.pipe.to_str().unwrap();
    for (extra, as_65532, contexts_use) in [
        (&[][..], false, empty.path()), // the process's pipe directory is empty: silent fallback
        (&["--ipc"][..], true, empty.path()), // the same with IPC and uid of a Pod
        (&[][..], false, other.pipe.as_path()), // a client of another daemon
    ] {
        let out = in_own_pid_namespace(extra, as_65532, contexts_use, &["check", "--json", "--pipe-dir", checked]);
        let report = check_json(&out);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {report:#}");
        assert_eq!(report["verdict"], "mps_not_joined", "{report:#}");
    }
    // run --mode mps with the empty pipe directory finds no daemon and refuses to measure.
    let out = in_own_pid_namespace(&[], false, empty.path(), &["run", "--mode", "mps", "--kernels", "5"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
#[ignore = "needs an NVIDIA GPU, root and unshare"]
fn time_slicing_in_its_own_pid_namespace_is_as_expected() {
    let empty = tempfile::tempdir().unwrap();
    let out = in_own_pid_namespace(&["--ipc"], false, empty.path(), &["check", "--expect", "timeslice", "--json"]);
    let report = check_json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["verdict"], "no_daemon");
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control, root and unshare"]
fn two_gpu_processes_of_one_namespace_are_each_proven_by_their_own_evidence() {
    let daemon = PrivateDaemon::start();
    let empty = tempfile::tempdir().unwrap();
    make_traversable(empty.path());
    // A joined MPS client runs in the background while the check runs beside it in the same PID namespace:
    // first as a client itself, then (its own pipe directory empty) as a fallback.
    let dir = tempfile::tempdir().unwrap();
    make_traversable(dir.path());
    let bin = dir.path().join("sharebench");
    std::fs::copy(common::binary(), &bin).unwrap();
    let script = format!(
        "{bin} run --mode mps --duration 6s --kernel tiny > /dev/null & sleep 2.5; \
         {bin} check --json > {dir}/joined.json; echo $? > {dir}/joined.rc; \
         CUDA_MPS_PIPE_DIRECTORY={empty} {bin} check --json --pipe-dir {pipe} > {dir}/fallback.json; \
         echo $? > {dir}/fallback.rc; wait",
        bin = bin.display(),
        dir = dir.path().display(),
        empty = empty.path().display(),
        pipe = daemon.pipe.display()
    );
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .env("CUDA_MPS_PIPE_DIRECTORY", &daemon.pipe)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let joined: serde_json::Value = serde_json::from_str(&read("joined.json")).unwrap();
    assert_eq!(read("joined.rc").trim(), "0", "{joined:#}");
    let m = &joined["observations"]["membership"];
    assert_eq!(m["decision"]["namespace_rows"], 2, "{m:#}");
    assert!(m["decision"]["row"].is_null(), "two clients of one namespace: no row is singled out: {m:#}");
    let fallback: serde_json::Value = serde_json::from_str(&read("fallback.json")).unwrap();
    assert_eq!(read("fallback.rc").trim(), "3", "{fallback:#}");
    let summary = fallback["steps"][3]["summary"].as_str().unwrap();
    assert!(summary.contains("other processes"), "{summary}");
}

#[test]
#[ignore = "needs an NVIDIA GPU, nvidia-cuda-mps-control, root, unshare and python3"]
fn a_command_in_a_pods_pid_namespace_is_proven_an_mps_client_by_its_tree() {
    let daemon = PrivateDaemon::start();
    let mut args = vec!["run", "--mode", "mps", "--duration", "2s", "--exec", "--", "sh", "-c"];
    // The CUDA process is a grandchild of the worker (pid 1), behind a shell, as in many images.
    let tenant = common::cuda_tenant(0.5, false);
    let script = format!("python3 -c '{}'", tenant[2].replace('\'', "'\\''"));
    args.push(&script);
    let out = in_own_pid_namespace(&["--ipc", "--uts", "--mount"], true, &daemon.pipe, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = check_json(&out);
    assert_eq!(r["host"]["pid"], 1);
    assert_eq!(r["sharing"]["verdict"], "mps_joined", "{:#}", r["tenant"]);
    assert_eq!(r["sharing"]["proof"], "command-tree+namespace");
    assert_eq!(r["tenant"]["membership_at_ready"]["client_rows"], 1);
    assert!(r["lanes"][0]["kernels"].as_u64().unwrap() > 100);
}

/// The host pid of the first child of `parent` (unshare --fork's child: pid 1 of the new namespace).
fn first_child(parent: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// SIGTERM to a worker that is pid 1 of its own PID namespace (where a signal without a handler is ignored):
/// it stops at once, exits within a second or two of Kubernetes' 30 s grace, and writes what it measured,
/// marked terminated.
#[test]
#[ignore = "needs an NVIDIA GPU, root and unshare"]
fn sigterm_to_a_worker_as_pid_1_keeps_what_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w0.json");
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(common::binary())
        .args(["run", "--mode", "timeslice", "--kernel", "fma", "--blocks", "16", "--duration", "60s"])
        .args(["--out", out.to_str().unwrap()])
        .env("CUDA_MPS_PIPE_DIRECTORY", dir.path().join("no-mps"))
        .env_remove("JOB_COMPLETION_INDEX")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let pid1 = first_child(child.id()).expect("unshare's child, pid 1 of the namespace");
    let sent = std::time::Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid1 as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    let mut stderr = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(took < std::time::Duration::from_secs(5), "exited {took:?} after SIGTERM: {stderr}");
    assert!(!status.success() || status.code() == Some(5), "{status:?}: {stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["status"]["complete"], false);
    assert_eq!(r["status"]["terminated"]["signal"], "SIGTERM", "{}", r["status"]);
    assert!(r["status"]["error"].as_str().unwrap().contains("terminated by SIGTERM"));
    assert!(r["lanes"][0]["kernels"].as_u64().unwrap() > 100, "what was measured is kept");
    eprintln!("SIGTERM as pid 1: exited after {took:?} with {status:?}, {} kernels kept", r["lanes"][0]["kernels"]);
}

/// A worker in a cgroup v2 of its own with `cpu.max QUOTA 100000`, as kubelet makes one for a Pod's limits.cpu.
fn run_in_cgroup(name: &str, quota: &str, sync: &str, dir: &Path) -> serde_json::Value {
    let cgroup = Path::new("/sys/fs/cgroup").join(format!("sharebench-test-{name}-{}", std::process::id()));
    let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(cgroup.join("cpu.max"), format!("{quota} 100000")).unwrap();
    let out = dir.join(format!("{name}.json"));
    let script = format!("echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"", cgroup.display());
    let status = Command::new("sh")
        .args(["-c", &script])
        .arg(common::binary())
        .args(["run", "--mode", "timeslice", "--kernel", "fma", "--blocks", "16", "--duration", "2s"])
        .args(["--sync", sync, "--out", out.to_str().unwrap()])
        .env("CUDA_MPS_PIPE_DIRECTORY", dir.join("no-mps"))
        .env_remove("JOB_COMPLETION_INDEX")
        .status()
        .unwrap();
    let _ = std::fs::remove_dir(&cgroup);
    assert!(status.success(), "{name}: {status:?}");
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

fn report_text(result: &Path) -> String {
    let out = common::sharebench().arg("report").arg(result).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs an NVIDIA GPU, root and cgroup v2"]
fn a_spinning_worker_under_a_small_cpu_limit_is_flagged_and_auto_waits_blocking_instead() {
    let dir = tempfile::tempdir().unwrap();
    // limits.cpu 500m: a worker that spins for its kernels is throttled, and the report says so (measured on an
    // H200: 48-51% of the window).
    let spin = run_in_cgroup("spin", "50000", "spin", dir.path());
    let h = &spin["host_conditions"];
    assert_eq!(h["cpu_quota"], 0.5, "{h}");
    let throttled = h["throttled_s"].as_f64().unwrap() / h["window_s"].as_f64().unwrap();
    assert!(throttled > 0.02, "spinning at 0.5 CPU throttled only {throttled}: {h}");
    let text = report_text(&dir.path().join("spin.json"));
    assert!(text.contains("throttled by its CPU limit (0.5 CPU)"), "{text}");
    // The default (auto) sees the quota and waits blocking (about 0.1 CPU). A lone worker still has a burst now
    // and then: one CFS period throttled in 5 of 15 runs of 2 s on the H200 (0.3-3.2% of the window,
    // results/h200/worker-pod/sync/blocking-burst.txt), where a spinning one loses half its window.
    let auto = run_in_cgroup("auto", "50000", "auto", dir.path());
    assert!(
        auto["config"]["sync"].as_str().unwrap().starts_with("blocking (auto: CPU quota 0.5"),
        "{}",
        auto["config"]
    );
    let h = &auto["host_conditions"];
    let blocking = h["throttled_s"].as_f64().unwrap() / h["window_s"].as_f64().unwrap();
    assert!(h["throttled_periods"].as_u64().unwrap() <= 2, "at most a burst or two: {h}");
    assert!(blocking < throttled / 5.0, "blocking at 0.5 CPU throttled {blocking}, spinning {throttled}: {h}");
}
