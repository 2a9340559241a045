//! `trace.json` in Chrome's trace-event format: one process per group, one track per worker, one slice per
//! kernel on the device clock, so Perfetto (ui.perfetto.dev) shows the overlap. Large runs are capped (each
//! worker's first kernels, `MAX_KERNELS` in all) so the file stays loadable; the cap is stated in the file.
//! Pure (returns text).

use crate::analysis::GroupKey;
use crate::load::Worker;
use std::fmt::Write;

/// Most kernel slices written in all, shared evenly by the workers (a trace Perfetto opens quickly).
pub const MAX_KERNELS: usize = 250_000;

/// Nanoseconds written as microseconds with three decimals, exactly, from integers (a trace holds a quarter
/// million of them: no float formatting).
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

pub fn render(groups: &[(&GroupKey, &[&Worker])]) -> String {
    let origin = groups
        .iter()
        .flat_map(|(_, ws)| ws.iter())
        .filter(|w| w.device_stamps)
        .filter_map(|w| w.records.iter().next().map(|r| r.device_start_ns))
        .min()
        .unwrap_or(0);
    let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    let mut first = true;
    let total_workers = groups.iter().map(|(_, ws)| ws.len()).sum::<usize>().max(1);
    let per_worker = (MAX_KERNELS / total_workers).max(1);
    let mut capped = false;
    // Events are separated by ",\n"; the first has nothing before it.
    let mut next_event = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push_str(",\n");
        }
    };
    for (pid, (key, workers)) in groups.iter().enumerate() {
        let name = serde_json::to_string(&format!("{} x{} {} ({})", key.mode, key.workers, key.run_id, key.gpu_uuid))
            .unwrap_or_default();
        next_event(&mut out);
        let _ = write!(out, "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"args\":{{\"name\":{name}}}}}");
        for w in workers.iter() {
            next_event(&mut out);
            let _ = write!(out, "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{},\"args\":{{\"name\":\"worker {}\"}}}}", w.worker, w.worker);
            // A foreign command's requests have no device times: its track stays empty.
            if !w.device_stamps {
                continue;
            }
            capped |= w.records.len() > per_worker;
            let kernel = w.config.shape.map(|s| s.kernel.to_string()).unwrap_or_default();
            for (i, r) in w.records.iter().take(per_worker).enumerate() {
                next_event(&mut out);
                let _ = write!(
                    out,
                    "{{\"ph\":\"X\",\"name\":\"{kernel}\",\"pid\":{pid},\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{\"kernel\":{i},\"sms\":{},\"latency_us\":{}}}}}",
                    w.worker,
                    Micros(r.device_start_ns - origin),
                    Micros(r.device_duration_ns()),
                    r.sm_count,
                    Micros(r.latency_ns)
                );
            }
        }
    }
    let _ = write!(out, "\n],\"otherData\":{{\"clock\":\"%globaltimer\",\"origin_ns\":{origin},\"capped_at_kernels_per_worker\":{}}}}}\n", if capped { per_worker as i64 } else { -1 });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;

    #[test]
    fn trace_is_valid_json_with_one_slice_per_kernel() {
        let ws = [synthetic("mps", 2, 0, 1000, 3, 500, 0), synthetic("mps", 2, 1, 1200, 3, 500, 0)];
        let key = GroupKey { run_id: "r".into(), workers: 2, gpu_uuid: "GPU-x".into(), mode: "mps".into() };
        let members: Vec<&Worker> = ws.iter().collect();
        let text = render(&[(&key, &members)]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let slices: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(slices.len(), 6);
        assert_eq!(slices[0]["ts"], 0.0);
        assert_eq!(slices[3]["ts"], 0.2);
        assert_eq!(v["otherData"]["capped_at_kernels_per_worker"], -1);
    }
}
