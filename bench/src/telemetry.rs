//! Samples GPU telemetry through NVML while a worker measures, on a thread of its own (never the measuring
//! thread): SM and memory clocks, clock-event (throttle) reasons, power draw and limit, temperature, GPU and
//! memory utilisation, and the processes on the GPU (compute processes, the MPS server among them, and MPS
//! clients) with the memory they hold. NVML (`libnvidia-ml.so.1`) is loaded at run time: where it is missing
//! the telemetry says so and the run goes on. The only module that touches NVML.

use crate::result::host::GpuSettings;
use crate::result::telemetry::{GpuProcess, Sample, Telemetry};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the GPU's clocks, power and utilisation are sampled.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// The process lists (the costliest NVML queries) are read every this many samples, and once more at the end.
pub const PROCESSES_EVERY: usize = 5;

/// A sampler thread; [`Sampler::begin`] starts its samples, [`Sampler::finish`] stops it and returns what it saw.
pub struct Sampler {
    control: std::sync::mpsc::Sender<Control>,
    thread: std::thread::JoinHandle<Telemetry>,
}

enum Control {
    /// Sample from now on; times count from this instant (the measuring start).
    Begin(Instant),
    Stop,
}

impl Sampler {
    /// Loads NVML and finds GPU `uuid` on a thread of its own, now, so that this cost falls before the measuring
    /// window (under a Pod's CPU quota it once throttled the window's first 60 ms); sampling waits for
    /// [`Sampler::begin`]. The thread sleeps between samples (no polling), so it takes nothing from the
    /// measuring thread but the NVML calls themselves (calibrate measures that cost).
    pub fn start(uuid: &str, interval: Duration, who: &str) -> Sampler {
        let (control, commands) = std::sync::mpsc::channel();
        let (uuid, who) = (uuid.to_string(), who.to_string());
        let thread = std::thread::spawn(move || sample(&uuid, interval, &who, &commands));
        Sampler { control, thread }
    }

    /// Starts sampling, with times counted from `origin`.
    pub fn begin(&self, origin: Instant) {
        let _ = self.control.send(Control::Begin(origin));
    }

    pub fn finish(self) -> Telemetry {
        let _ = self.control.send(Control::Stop);
        self.thread.join().unwrap_or_else(|_| Telemetry::unavailable("?", "the sampler thread failed".into()))
    }
}

/// The GPU's settings that change what sharing measures, read only: NVML's compute mode and MIG mode, and the
/// compute policy's time-slice as `nvidia-smi compute-policy -l` prints it (NVML has no call for it).
pub fn gpu_settings(uuid: &str) -> GpuSettings {
    let mut settings = GpuSettings { timeslice: compute_policy(uuid), ..GpuSettings::default() };
    let device = Nvml::init().map_err(|e| e.to_string()).and_then(|nvml| {
        let d = nvml.device_by_uuid(uuid).map_err(|e| e.to_string())?;
        let mode = d.compute_mode().map(|m| compute_mode_label(&m)).map_err(|e| e.to_string());
        let mig = d.mig_mode().ok().map(|m| if m.current == 1 { "enabled" } else { "disabled" });
        Ok((mode, mig))
    });
    match device {
        Ok((mode, mig)) => {
            settings.mig_mode = mig.map(str::to_string);
            match mode {
                Ok(m) => settings.compute_mode = Some(m.into()),
                Err(e) => settings.unreadable = Some(format!("compute mode: {e}")),
            }
        }
        Err(e) => settings.unreadable = Some(format!("NVML: {e}")),
    }
    settings
}

fn compute_mode_label(mode: &nvml_wrapper::enum_wrappers::device::ComputeMode) -> &'static str {
    use nvml_wrapper::enum_wrappers::device::ComputeMode;
    match mode {
        ComputeMode::Default => "default",
        ComputeMode::ExclusiveThread => "exclusive_thread",
        ComputeMode::Prohibited => "prohibited",
        ComputeMode::ExclusiveProcess => "exclusive_process",
    }
}

/// `nvidia-smi compute-policy -l -i UUID`, its lines about the time-slice joined; `None` where it cannot run.
fn compute_policy(uuid: &str) -> Option<String> {
    let output = std::process::Command::new("nvidia-smi")
        .args(["compute-policy", "-l", "-i", uuid])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    parse_timeslice(&String::from_utf8_lossy(&output.stdout))
}

/// The time-slice value of `nvidia-smi compute-policy -l`'s table (`|   0   Timeslice       Default       |`):
/// the words after `Timeslice` (`Default`, `Short`, ...), per GPU listed, joined.
pub fn parse_timeslice(text: &str) -> Option<String> {
    let values: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> =
                line.split(|c: char| c == '|' || c.is_whitespace()).filter(|w| !w.is_empty()).collect();
            let at = words.iter().position(|w| w.eq_ignore_ascii_case("timeslice"))?;
            let value = words[at + 1..].join(" ");
            (!value.is_empty()).then_some(value)
        })
        .collect();
    (!values.is_empty()).then(|| crate::units::printable(&values.join("; ").chars().take(200).collect::<String>()))
}

fn sample(uuid: &str, interval: Duration, who: &str, commands: &Receiver<Control>) -> Telemetry {
    let nvml = Nvml::init();
    let device = nvml
        .as_ref()
        .map_err(|e| format!("NVML could not be loaded: {e}"))
        .and_then(|nvml| nvml.device_by_uuid(uuid).map_err(|e| format!("NVML does not know GPU {uuid}: {e}")));
    let origin = match commands.recv() {
        Ok(Control::Begin(origin)) => origin,
        Ok(Control::Stop) | Err(_) => return Telemetry::unavailable(who, "stopped before measuring began".into()),
    };
    let device = match device {
        Ok(d) => d,
        Err(e) => return Telemetry::unavailable(who, e),
    };
    let own_pid = std::process::id();
    let mut t = Telemetry {
        source: "nvml".into(),
        interval_ms: interval.as_millis() as u32,
        ..Telemetry::unavailable(who, String::new())
    };
    let mut last = false;
    loop {
        let t_ms = origin.elapsed().as_millis() as u32;
        let utilization = device.utilization_rates().ok();
        t.samples.push(Sample {
            t_ms,
            sm_mhz: device.clock_info(Clock::SM).ok(),
            mem_mhz: device.clock_info(Clock::Memory).ok(),
            throttle: device.current_throttle_reasons().ok().map(|r| r.bits()),
            power_mw: device.power_usage().ok(),
            power_limit_mw: device.enforced_power_limit().ok(),
            temp_c: device.temperature(TemperatureSensor::Gpu).ok(),
            gpu_util_pct: utilization.as_ref().map(|u| u.gpu),
            mem_util_pct: utilization.as_ref().map(|u| u.memory),
        });
        let lists = if last || (t.samples.len() - 1) % PROCESSES_EVERY == 0 {
            vec![
                ("compute", device.running_compute_processes()),
                ("mps-client", device.mps_running_compute_processes()),
            ]
        } else {
            vec![]
        };
        for (kind, listed) in lists {
            for p in listed.unwrap_or_default() {
                let used = match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                };
                note_process(&mut t.processes, p.pid, kind, used, t_ms);
                t.own_pid_listed |= p.pid == own_pid;
            }
        }
        if last {
            return t;
        }
        // Asleep until the next sample, or until told to stop (then one last sample, process lists included).
        last = !matches!(commands.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
    }
}

/// Adds a sighting of `pid` to the processes seen so far.
fn note_process(seen: &mut Vec<GpuProcess>, pid: u32, kind: &str, used: Option<u64>, t_ms: u32) {
    match seen.iter_mut().find(|p| p.pid == pid && p.kind == kind) {
        Some(p) => {
            p.last_ms = t_ms;
            p.max_used_bytes = p.max_used_bytes.max(used);
        }
        None => seen.push(GpuProcess {
            pid,
            kind: kind.into(),
            comm: std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim().to_string()),
            max_used_bytes: used,
            first_ms: t_ms,
            last_ms: t_ms,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compute_policy_time_slice_is_read_from_nvidia_smis_table() {
        // As nvidia-smi 580.159.04 printed it on the H200 (results/h200/worker-pod/gpu-settings.txt).
        let table = "+-------------------------------------+\n| GPU compute policies:               |\n\
                     | GPU     Name           Value        |\n|=====================================|\n\
                     |   0   Timeslice       Default       |\n+-------------------------------------+\n";
        assert_eq!(parse_timeslice(table).as_deref(), Some("Default"));
        assert_eq!(parse_timeslice("No devices were found\n"), None);
    }

    #[test]
    fn without_nvml_the_telemetry_says_why_and_the_run_goes_on() {
        // CI machines have no NVIDIA driver: the sampler must stop at once and explain.
        if Nvml::init().is_ok() {
            eprintln!("skipped: NVML loads on this machine, and this test is of one without it");
            return;
        }
        let sampler = Sampler::start("GPU-x", INTERVAL, "worker 0");
        sampler.begin(Instant::now());
        let t = sampler.finish();
        assert!(t.source.starts_with("unavailable: NVML could not be loaded"), "{}", t.source);
        assert!(t.samples.is_empty());
    }

    #[test]
    fn processes_are_noted_once_with_their_peak_memory() {
        let mut seen = Vec::new();
        note_process(&mut seen, 7, "compute", Some(10), 0);
        note_process(&mut seen, 7, "compute", Some(30), 100);
        note_process(&mut seen, 7, "compute", None, 200);
        note_process(&mut seen, 8, "mps-client", None, 200);
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].max_used_bytes, seen[0].first_ms, seen[0].last_ms), (Some(30), 0, 200));
    }
}
