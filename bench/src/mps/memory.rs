//! The device memory a CUDA context may use (pure): free and total as the context sees them (`cuMemGetInfo`), the
//! MPS pinned-memory limit in force and where it came from: the client's `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`,
//! else the control daemon's `get_default_device_pinned_mem_limit`, else nothing named, only what the context
//! observes. Measured on an H200 (driver 580): a client with `0=8G` saw 7.5 GiB free of the full 139.8 GiB
//! total (the total is not reduced; free is capped), and the limit is per CUDA client process, not per Pod.
//! Under time-slicing nothing enforces it: a set variable is reported as not enforced.

pub use crate::result::memory::{ContextMemory, LimitSource, MemoryHold};

/// The client's limit, as MPS reads it: `<device>=<limit>[,<device>=<limit>...]`, the device an ordinal or a
/// UUID (prefix), the limit with a binary unit (`8G` is 8 GiB).
pub const LIMIT_ENV: &str = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT";

/// Parses an MPS size: a number with an optional `K`, `M`, `G` or `T` (binary: `8G` is 8 GiB; a trailing `B`
/// is allowed), or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size (examples: 8G, 512M)"))?;
    let shift = match unit.trim().trim_end_matches(['B', 'b']).to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KI" => 10,
        "M" | "MI" => 20,
        "G" | "GI" => 30,
        "T" | "TI" => 40,
        _ => return Err(format!("unknown unit in '{text}' (use K, M, G or T)")),
    };
    let bytes = value * (1u64 << shift) as f64;
    match bytes.is_finite() && (0.0..=1e16).contains(&bytes) {
        true => Ok(bytes.round() as u64),
        false => Err(format!("'{text}' is out of range")),
    }
}

/// The limit `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` sets for the device of `ordinal` and `uuid` (`None`: the value
/// names other devices only). A malformed value is an error naming the pair.
pub fn limit_from_env(value: &str, ordinal: u32, uuid: &str) -> Result<Option<u64>, String> {
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (device, limit) = pair
            .split_once('=')
            .ok_or_else(|| format!("{LIMIT_ENV} pair '{pair}' is not <device>=<limit> (example: 0=8G)"))?;
        let device = device.trim();
        let ours = match device.parse::<u32>() {
            Ok(n) => n == ordinal,
            Err(_) => device.len() >= 8 && uuid.starts_with(device),
        };
        if ours {
            return parse_size(limit).map(Some).map_err(|e| format!("{LIMIT_ENV} pair '{pair}': {e}"));
        }
    }
    Ok(None)
}

/// The daemon's answer to `get_default_device_pinned_mem_limit <device>`: a size, or `None` where it names no
/// limit (nothing set, `0`, or an answer that is not a size).
pub fn limit_from_daemon(answer: &str) -> Option<u64> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty())?;
    parse_size(line).ok().filter(|&b| b > 0)
}

/// The limit in force and where it came from: the client's environment overrides the daemon's default; outside
/// MPS neither applies.
pub fn resolve(
    (free_bytes, total_bytes): (u64, u64),
    mps_client: bool,
    env: Option<(&str, Option<u64>)>,
    daemon: Option<(&str, u64)>,
) -> ContextMemory {
    let (limit_bytes, limit_source, setting) = match (mps_client, env, daemon) {
        (false, env, _) => (None, LimitSource::NotEnforced, env.map(|(v, _)| v.to_string())),
        (true, Some((v, Some(bytes))), _) => (Some(bytes), LimitSource::ClientEnvironment, Some(v.to_string())),
        (true, _, Some((answer, bytes))) => (Some(bytes), LimitSource::DaemonDefault, Some(answer.trim().to_string())),
        (true, _, None) => (None, LimitSource::OnlyObserved, None),
    };
    ContextMemory { total_bytes, free_bytes, limit_bytes, limit_source, setting, held: None }
}

/// How much device memory a worker takes and holds (`--hold-memory`): a size, or all it can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryAsk {
    Bytes(u64),
    All,
}

impl MemoryAsk {
    /// `all`, or a size (`20G`, `512M`).
    pub fn parse(text: &str) -> Result<MemoryAsk, String> {
        match text.trim() {
            "all" | "max" => Ok(MemoryAsk::All),
            size => match parse_size(size)? {
                0 => Err("a size above 0, or all".into()),
                bytes => Ok(MemoryAsk::Bytes(bytes)),
            },
        }
    }

    /// As a `--hold-memory` value.
    pub fn arg(self) -> String {
        match self {
            MemoryAsk::All => "all".into(),
            MemoryAsk::Bytes(b) => b.to_string(),
        }
    }

    pub fn label(self) -> String {
        match self {
            MemoryAsk::All => "all".into(),
            MemoryAsk::Bytes(b) => gib(b),
        }
    }
}

/// What stopped a hold short, in words: its MPS limit where it got about as much as that allows (the context's
/// own overhead comes out of the limit too), else the GPU's free memory, which neighbours share.
pub fn hold_text(m: &ContextMemory) -> Option<String> {
    let h = m.held.as_ref()?;
    let got = format!("held {} (asked {})", gib(h.held_bytes), h.asked);
    Some(match (&h.stopped_by, m.limit_bytes) {
        (None, _) => got,
        (Some(why), Some(limit)) if h.held_bytes + (1 << 30) >= limit => {
            format!("{got}, then {why}: stopped by its MPS limit of {}", gib(limit))
        }
        (Some(why), _) => format!(
            "{got}, then {why}: stopped by the GPU's free memory ({} free then), {}",
            gib(h.free_after_bytes),
            match (&m.limit_source, &m.setting) {
                (LimitSource::NotEnforced, Some(setting)) => {
                    format!("not by its limit {setting}, which nothing enforces outside MPS")
                }
                _ => "which no limit reserved".into(),
            }
        ),
    })
}

/// What a hold left to everyone else on the GPU: under an enforced limit, all beyond the limit (the holder's
/// own view of free memory stops at its limit, so says nothing of the GPU's); without one, what the holder saw
/// free once it held its memory.
pub fn left_for_others_text(m: &ContextMemory) -> Option<String> {
    let h = m.held.as_ref()?;
    Some(match m.limit_bytes {
        Some(limit) if limit < m.total_bytes => format!(
            "it could take no more than its limit, so {} of the GPU's {} stayed beyond its reach",
            gib(m.total_bytes - limit),
            gib(m.total_bytes)
        ),
        _ => format!("{} was left free for every other process on the GPU", gib(h.free_after_bytes)),
    })
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// One sentence on what the context may use (and took, where it held memory); `processes` is how many CUDA
/// processes the Pod runs, where known (each gets the whole limit).
pub fn describe(m: &ContextMemory, processes: Option<usize>) -> String {
    match hold_text(m) {
        Some(held) => format!("{}; {held}", describe_limit(m, processes)),
        None => describe_limit(m, processes),
    }
}

fn describe_limit(m: &ContextMemory, processes: Option<usize>) -> String {
    let seen = format!("sees {} free of {}", gib(m.free_bytes), gib(m.total_bytes));
    let per_process = |limit: u64| match processes {
        Some(n) if n > 1 => format!(
            "; the limit is per CUDA process, not per Pod: this Pod's {n} processes may take {} together",
            gib(limit * n as u64)
        ),
        _ => "; the limit is per CUDA process, not per Pod: a second process in the Pod gets as much again".into(),
    };
    match (m.limit_source, m.limit_bytes) {
        (LimitSource::ClientEnvironment, Some(limit)) => format!(
            "{seen}; MPS pinned memory limit {} from {LIMIT_ENV}={}{}",
            gib(limit),
            m.setting.as_deref().unwrap_or("?"),
            per_process(limit)
        ),
        (LimitSource::DaemonDefault, Some(limit)) => format!(
            "{seen}; MPS pinned memory limit {} from the daemon's default (get_default_device_pinned_mem_limit: {}){}",
            gib(limit),
            m.setting.as_deref().unwrap_or("?"),
            per_process(limit)
        ),
        (LimitSource::NotEnforced, _) => match &m.setting {
            Some(v) => format!(
                "{seen}; {LIMIT_ENV}={v} is set but not enforced: not an MPS client, so nothing limits this \
                 process's memory, nor a neighbour's"
            ),
            None => format!("{seen}; no memory limit applies (not an MPS client): a neighbour may take the rest"),
        },
        _ => format!("{seen}; no MPS memory limit named (neither {LIMIT_ENV} nor the daemon's default)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "GPU-e9aa6bfd-bc51-34a1-0f96-511c76d49553";
    const GIB: u64 = 1 << 30;

    #[test]
    fn sizes_are_binary_as_mps_reads_them() {
        assert_eq!(parse_size("8G").unwrap(), 8 * GIB);
        assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 * GIB / 2);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("8X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn the_environment_names_a_limit_by_ordinal_or_uuid_and_a_bad_pair_is_named() {
        assert_eq!(limit_from_env("0=8G", 0, UUID).unwrap(), Some(8 * GIB));
        assert_eq!(limit_from_env("1=4G, 0=2G", 0, UUID).unwrap(), Some(2 * GIB));
        assert_eq!(limit_from_env("1=4G", 0, UUID).unwrap(), None, "another device's limit");
        assert_eq!(limit_from_env("GPU-e9aa6bfd=1G", 3, UUID).unwrap(), Some(GIB), "a UUID prefix");
        let err = limit_from_env("0:8G", 0, UUID).unwrap_err();
        assert!(err.contains("'0:8G'") && err.contains("<device>=<limit>"), "{err}");
        assert!(limit_from_env("0=eight", 0, UUID).unwrap_err().contains("'0=eight'"));
    }

    #[test]
    fn the_daemon_answer_names_a_limit_or_none() {
        assert_eq!(limit_from_daemon("8G\n"), Some(8 * GIB));
        assert_eq!(limit_from_daemon("0\n"), None);
        assert_eq!(limit_from_daemon(""), None);
        assert_eq!(limit_from_daemon("Invalid device\n"), None);
    }

    #[test]
    fn the_client_environment_overrides_the_daemon_and_outside_mps_nothing_applies() {
        let seen = (7 * GIB, 140 * GIB);
        let env = resolve(seen, true, Some(("0=8G", Some(8 * GIB))), Some(("16G", 16 * GIB)));
        assert_eq!((env.limit_bytes, env.limit_source), (Some(8 * GIB), LimitSource::ClientEnvironment));
        let daemon = resolve(seen, true, Some(("1=8G", None)), Some(("16G\n", 16 * GIB)));
        assert_eq!((daemon.limit_bytes, daemon.setting.as_deref()), (Some(16 * GIB), Some("16G")));
        assert_eq!(resolve(seen, true, None, None).limit_source, LimitSource::OnlyObserved);
        let ts = resolve(seen, false, Some(("0=8G", Some(8 * GIB))), None);
        assert_eq!((ts.limit_bytes, ts.limit_source), (None, LimitSource::NotEnforced));
        assert!(describe(&ts, None).contains("set but not enforced"), "{}", describe(&ts, None));
    }

    #[test]
    fn a_hold_says_what_stopped_it() {
        assert_eq!(MemoryAsk::parse("all").unwrap(), MemoryAsk::All);
        assert_eq!(MemoryAsk::parse("20G").unwrap(), MemoryAsk::Bytes(20 * GIB));
        assert!(MemoryAsk::parse("0").is_err() && MemoryAsk::parse("lots").is_err());
        let hold = |held_bytes, stopped: Option<&str>| MemoryHold {
            asked: "20G".into(),
            held_bytes,
            stopped_by: stopped.map(String::from),
            free_after_bytes: GIB / 2,
        };
        let mut m = resolve((15 * GIB / 2, 140 * GIB), true, Some(("0=8G", Some(8 * GIB))), None);
        m.held = Some(hold(7 * GIB, Some("out of memory")));
        assert!(hold_text(&m).unwrap().ends_with("stopped by its MPS limit of 8.0 GiB"), "{:?}", hold_text(&m));
        assert!(describe(&m, None).contains("; held 7.0 GiB (asked 20G), then out of memory"));
        let mut ts = resolve((9 * GIB, 140 * GIB), false, None, None);
        ts.held = Some(hold(8 * GIB, Some("out of memory")));
        assert!(hold_text(&ts).unwrap().contains("stopped by the GPU's free memory (0.5 GiB free then)"));
        ts.held = Some(hold(20 * GIB, None));
        assert_eq!(hold_text(&ts).unwrap(), "held 20.0 GiB (asked 20G)");
        assert_eq!(hold_text(&resolve((GIB, GIB), true, None, None)), None);
        let mut unenforced = resolve((9 * GIB, 140 * GIB), false, Some(("0=16G", Some(16 * GIB))), None);
        unenforced.held = Some(hold(130 * GIB, Some("out of memory")));
        let text = hold_text(&unenforced).unwrap();
        assert!(text.ends_with("not by its limit 0=16G, which nothing enforces outside MPS"), "{text}");
    }

    #[test]
    fn what_a_hold_left_to_others_is_the_gpu_beyond_its_limit_or_what_it_saw_free() {
        let mut limited = resolve((16 * GIB, 140 * GIB), true, Some(("0=16G", Some(16 * GIB))), None);
        limited.held =
            Some(MemoryHold { asked: "all".into(), held_bytes: 15 * GIB, stopped_by: None, free_after_bytes: 0 });
        let text = left_for_others_text(&limited).unwrap();
        assert_eq!(
            text,
            "it could take no more than its limit, so 124.0 GiB of the GPU's 140.0 GiB stayed beyond its reach"
        );
        let mut open = resolve((140 * GIB, 140 * GIB), false, None, None);
        open.held = Some(MemoryHold {
            asked: "all".into(),
            held_bytes: 139 * GIB,
            stopped_by: None,
            free_after_bytes: GIB / 2,
        });
        assert_eq!(left_for_others_text(&open).unwrap(), "0.5 GiB was left free for every other process on the GPU");
        assert_eq!(left_for_others_text(&resolve((GIB, GIB), true, None, None)), None);
    }

    #[test]
    fn the_sentence_says_the_limit_is_per_process() {
        let m = resolve((7 * GIB + GIB / 2, 140 * GIB), true, Some(("0=8G", Some(8 * GIB))), None);
        let one = describe(&m, Some(1));
        assert!(one.starts_with("sees 7.5 GiB free of 140.0 GiB; MPS pinned memory limit 8.0 GiB"), "{one}");
        assert!(one.contains("a second process in the Pod gets as much again"), "{one}");
        let two = describe(&m, Some(2));
        assert!(two.contains("this Pod's 2 processes may take 16.0 GiB together"), "{two}");
        let daemon = resolve((GIB, 140 * GIB), true, None, Some(("4G", 4 * GIB)));
        assert!(describe(&daemon, None).contains("from the daemon's default (get_default_device_pinned_mem_limit: 4G)"));
    }
}
