//! Shared by the GPU test files: the binary under test and a private MPS daemon.
#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test: `SHAREBENCH_BIN`, else the one cargo built.
pub fn binary() -> PathBuf {
    PathBuf::from(std::env::var("SHAREBENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sharebench").to_string()))
}

pub fn sharebench() -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_remove("JOB_COMPLETION_INDEX");
    cmd
}

/// An MPS control daemon in a private pipe directory, quit when dropped.
pub struct PrivateDaemon {
    pub pipe: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateDaemon {
    pub fn start() -> PrivateDaemon {
        let dir = tempfile::tempdir().unwrap();
        let (pipe, log) = (dir.path().join("pipe"), dir.path().join("log"));
        std::fs::create_dir_all(&pipe).unwrap();
        std::fs::create_dir_all(&log).unwrap();
        // Other users (a worker running as 65532) must reach the pipe directory through the temp dir.
        make_traversable(dir.path());
        let daemon = PrivateDaemon { pipe, log, _dir: dir };
        daemon.control(&["-d"], "");
        std::thread::sleep(std::time::Duration::from_millis(500));
        daemon
    }

    fn control(&self, args: &[&str], stdin: &str) {
        use std::io::Write;
        let mut c = Command::new("nvidia-cuda-mps-control")
            .args(args)
            .env("CUDA_MPS_PIPE_DIRECTORY", &self.pipe)
            .env("CUDA_MPS_LOG_DIRECTORY", &self.log)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        c.wait().unwrap();
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        self.control(&[], "quit\n");
    }
}

/// Gives everyone search (and read) permission on `path`.
pub fn make_traversable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A CUDA tenant for `run --exec` through the driver API alone (Python + ctypes, no framework): creates its
/// context after `delay` seconds (late, as after loading a model), reports ready, and serves 1 MiB memsets as
/// requests until SIGTERM. With `fallback`, it points its own contexts at an empty pipe directory first (a silent
/// fallback that its environment as sharebench gave it does not show).
pub fn cuda_tenant(delay: f64, fallback: bool) -> Vec<String> {
    let script = format!(
        r#"
import ctypes, os, signal, time
if {fallback}:
    os.makedirs("/tmp/sharebench-test-empty", exist_ok=True)
    os.environ["CUDA_MPS_PIPE_DIRECTORY"] = "/tmp/sharebench-test-empty"
time.sleep({delay})
cu = ctypes.CDLL("libcuda.so.1")
assert cu.cuInit(0) == 0
dev, ctx, buf = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p()
assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0 and cu.cuCtxSetCurrent(ctx) == 0
assert cu.cuMemAlloc_v2(ctypes.byref(buf), 1 << 20) == 0
report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", file=report)
while not stop:
    t = time.time_ns()
    assert cu.cuMemsetD8_v2(buf, 7, 1 << 20) == 0 and cu.cuCtxSynchronize() == 0
    print("request latency_ms=%f start_ns=%d" % ((time.time_ns() - t) / 1e6, t), file=report)
    time.sleep(0.001)
"#,
        fallback = if fallback { "True" } else { "False" }
    );
    vec!["python3".into(), "-c".into(), script]
}
