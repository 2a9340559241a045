//! The barrier's lines (READY, GO, ABORT) and who is admitted: this run's workers only, each index once. Pure.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// What every worker of one run agrees on, sent with READY and checked by the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunIdentity {
    pub workers: u32,
    /// The run id (`--run-id`); `None` where the worker was given none.
    pub run_id: Option<String>,
    /// The scenario's digest for plan points ([`digest`]).
    pub digest: Option<String>,
    /// A secret every worker of the run was given (`--barrier-token`); the server admits no one without it.
    pub token: Option<String>,
}

impl RunIdentity {
    pub fn new(workers: u32) -> RunIdentity {
        RunIdentity { workers, ..RunIdentity::default() }
    }
}

/// A protocol line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `identity: None` for a READY without `workers=` (a worker of an older sharebench, or not one at all).
    Ready {
        index: u32,
        host: String,
        identity: Option<RunIdentity>,
    },
    Go {
        start_unix_ns: u64,
    },
    Abort {
        reason: String,
    },
}

impl Message {
    pub fn parse(line: &str) -> Option<Message> {
        let line = line.trim_end();
        let mut words = line.splitn(2, ' ');
        match (words.next()?, words.next()) {
            ("READY", Some(rest)) => parse_ready(rest),
            ("GO", Some(ns)) if !ns.contains(' ') => Some(Message::Go { start_unix_ns: ns.parse().ok()? }),
            ("ABORT", reason) => Some(Message::Abort { reason: reason.unwrap_or("").trim().to_string() }),
            _ => None,
        }
    }

    pub fn render(&self) -> String {
        match self {
            Message::Ready { index, host, identity } => {
                let mut line = format!("READY {index} {host}");
                if let Some(id) = identity {
                    line += &format!(" workers={}", id.workers);
                    if let Some(run) = &id.run_id {
                        line += &format!(" run={run}");
                    }
                    if let Some(digest) = &id.digest {
                        line += &format!(" digest={digest}");
                    }
                    if let Some(token) = &id.token {
                        line += &format!(" token={token}");
                    }
                }
                line + "\n"
            }
            Message::Go { start_unix_ns } => format!("GO {start_unix_ns}\n"),
            Message::Abort { reason } => format!("ABORT {reason}\n"),
        }
    }
}

/// `<index> <host> [key=value ...]`: the host is one word; keys other than workers, run and digest are refused.
fn parse_ready(rest: &str) -> Option<Message> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let index = words.next()?.parse().ok()?;
    let host = words.next().unwrap_or("").to_string();
    if host.contains('=') {
        return None;
    }
    let (mut workers, mut run_id, mut digest, mut token) = (None, None, None, None);
    for word in words {
        match word.split_once('=')? {
            ("workers", n) => workers = Some(n.parse().ok()?),
            ("run", id) if !id.is_empty() => run_id = Some(id.to_string()),
            ("digest", d) if !d.is_empty() => digest = Some(d.to_string()),
            ("token", t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return None,
        }
    }
    let identity = workers.map(|workers| RunIdentity { workers, run_id, digest, token });
    Some(Message::Ready { index, host, identity })
}

/// A fresh barrier token: 128 bits from the kernel's random source, as hex.
pub fn new_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::new(format!("cannot read /dev/urandom for a barrier token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A short digest of a text (FNV-1a, 64 bits, hex): enough to tell two scenarios apart, not a security measure.
pub fn digest(text: &str) -> String {
    let hash = crate::units::fnv1a(text.bytes());
    format!("{hash:016x}")
}

/// What the server does with a READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Refused with this reason; the index stays with whoever holds it and the run goes on.
    Refuse(String),
}

/// Whether the server (of `ours`) admits worker `index` from `host` claiming `theirs`, given who arrived.
pub fn admit(
    ours: &RunIdentity,
    index: u32,
    host: &str,
    theirs: Option<&RunIdentity>,
    arrived: &BTreeMap<u32, String>,
) -> Admission {
    let Some(theirs) = theirs else {
        return Admission::Refuse(
            "READY without workers=<N>: not a worker of this sharebench version (a stale or foreign worker)".into(),
        );
    };
    if theirs.workers != ours.workers {
        return Admission::Refuse(format!(
            "worker count {} is not this barrier's {} (another run, or a stale worker)",
            theirs.workers, ours.workers
        ));
    }
    if index >= ours.workers {
        return Admission::Refuse(format!("worker index {index} out of range 0..{}", ours.workers));
    }
    let differs = |what: &str, mine: &Option<String>, yours: &Option<String>| match (mine, yours) {
        (Some(m), Some(y)) if m != y => Some(format!("{what} {y} is not this barrier's {m}")),
        (Some(m), None) => Some(format!("no {what} given; this barrier's is {m}")),
        _ => None,
    };
    if let Some(reason) = differs("run id", &ours.run_id, &theirs.run_id)
        .or_else(|| differs("scenario digest", &ours.digest, &theirs.digest))
    {
        return Admission::Refuse(format!("{reason} (another run, or a stale worker)"));
    }
    if ours.token.is_some() && ours.token != theirs.token {
        // Never echo the token: the refusal goes to whoever connected.
        return Admission::Refuse("barrier token missing or wrong (not a worker of this run)".into());
    }
    match arrived.get(&index) {
        None => Admission::Admit,
        Some(first) => Admission::Refuse(format!(
            "worker index {index} is already held by {first}: refusing {host} (two workers given one index, or a stale Pod of an earlier attempt?)"
        )),
    }
}

/// Lists the indices of 0..n not in `arrived`, compactly (`2, 5-7`).
pub fn missing_workers(n: u32, arrived: impl IntoIterator<Item = u32>) -> String {
    let arrived: std::collections::BTreeSet<u32> = arrived.into_iter().collect();
    let missing: Vec<u32> = (0..n).filter(|i| !arrived.contains(i)).collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < missing.len() {
        let mut j = i;
        while j + 1 < missing.len() && missing[j + 1] == missing[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { missing[i].to_string() } else { format!("{}-{}", missing[i], missing[j]) });
        i = j + 1;
    }
    parts.join(", ")
}

/// If the arrived workers' hosts are named `<prefix><index>` (an Indexed Job's pod hostnames), the host name a
/// missing index would have, else `None`.
pub fn host_pattern(hosts: &BTreeMap<u32, String>) -> Option<String> {
    let mut prefix = None;
    for (index, host) in hosts {
        let p = host.strip_suffix(&index.to_string())?;
        if prefix.get_or_insert(p) != &p {
            return None;
        }
    }
    prefix.map(str::to_string)
}

/// `2-3 (pods sharebench-2, sharebench-3)` when the pod names can be told, else the indices.
pub(super) fn describe_missing<T>(workers: u32, arrived: &BTreeMap<u32, (String, T)>) -> String {
    let indices = missing_workers(workers, arrived.keys().copied());
    let hosts: BTreeMap<u32, String> = arrived.iter().map(|(i, (h, _))| (*i, h.clone())).collect();
    match host_pattern(&hosts) {
        Some(prefix) if !hosts.is_empty() => {
            let names: Vec<String> =
                (0..workers).filter(|i| !hosts.contains_key(i)).map(|i| format!("{prefix}{i}")).collect();
            format!("{indices} (pods {})", names.join(", "))
        }
        _ => indices,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn run(workers: u32) -> RunIdentity {
        RunIdentity { workers, run_id: Some("experiment-1".into()), digest: Some(digest("scenario")), token: None }
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Ready { index: 3, host: "pod-3".into(), identity: Some(run(4)) },
            Message::Ready { index: 0, host: "node".into(), identity: Some(RunIdentity::new(2)) },
            Message::Go { start_unix_ns: 1_700_000_000_000_000_000 },
            Message::Abort { reason: "2 of 4 workers arrived".into() },
        ] {
            assert_eq!(Message::parse(&m.render()), Some(m));
        }
        assert_eq!(Message::parse("HELLO"), None);
        assert_eq!(Message::parse("READY x y"), None);
        assert_eq!(Message::parse("READY 1 h color=red"), None);
        assert_eq!(Message::parse("READY 1 h workers=x"), None);
        assert_eq!(Message::parse("READY 1 h"), Some(Message::Ready { index: 1, host: "h".into(), identity: None }));
    }

    proptest::proptest! {
        #[test]
        fn any_line_a_stranger_sends_is_parsed_or_refused_never_a_panic(line in "(READY )?[ -~]{0,200}") {
            if let Some(Message::Ready { index, host, identity }) = Message::parse(&line) {
                let _ = admit(&run(4), index, &host, identity.as_ref(), &BTreeMap::new());
            }
        }
    }

    #[test]
    fn only_this_runs_workers_are_admitted() {
        let ours = run(4);
        let none = BTreeMap::new();
        assert_eq!(admit(&ours, 0, "sharebench-0", Some(&run(4)), &none), Admission::Admit);
        let refused = |theirs: Option<&RunIdentity>| match admit(&ours, 1, "sharebench-1", theirs, &none) {
            Admission::Refuse(reason) => reason,
            other => panic!("{other:?}"),
        };
        let other_run = RunIdentity { run_id: Some("experiment-2".into()), ..run(4) };
        assert!(refused(Some(&other_run)).contains("run id experiment-2 is not this barrier's experiment-1"));
        assert!(refused(Some(&run(8))).contains("worker count 8 is not this barrier's 4"));
        let other_scenario = RunIdentity { digest: Some(digest("another")), ..run(4) };
        assert!(refused(Some(&other_scenario)).contains("scenario digest"));
        assert!(refused(Some(&RunIdentity::new(4))).contains("no run id given"));
        assert!(refused(None).contains("without workers="));
        assert!(
            matches!(admit(&ours, 4, "h", Some(&run(4)), &none), Admission::Refuse(r) if r.contains("out of range"))
        );
        // A server that knows no run id (compare's loopback barrier) checks the count alone.
        assert_eq!(admit(&RunIdentity::new(4), 2, "node", Some(&run(4)), &none), Admission::Admit);
    }

    #[test]
    fn a_held_index_is_never_taken_and_no_line_aborts_the_run() {
        // `READY 0 sharebench-0 workers=2 run=...` from anyone who knows the run id once aborted the whole run.
        let arrived: BTreeMap<u32, String> = [(0, "sharebench-0".to_string())].into_iter().collect();
        for host in ["sharebench-0-old", "sharebench-0"] {
            assert!(matches!(
                admit(&run(2), 0, host, Some(&run(2)), &arrived),
                Admission::Refuse(r) if r.contains("already held by sharebench-0")
            ));
        }
    }

    #[test]
    fn with_a_token_only_workers_that_know_it_are_admitted_and_it_is_never_echoed() {
        let ours = RunIdentity { token: Some("s3cret".into()), ..run(2) };
        let none = BTreeMap::new();
        assert_eq!(admit(&ours, 0, "h", Some(&ours), &none), Admission::Admit);
        for theirs in [run(2), RunIdentity { token: Some("guess".into()), ..run(2) }] {
            match admit(&ours, 0, "h", Some(&theirs), &none) {
                Admission::Refuse(r) => assert!(r.contains("token missing or wrong") && !r.contains("s3cret"), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        let line = Message::Ready { index: 1, host: "h".into(), identity: Some(ours.clone()) }.render();
        assert!(line.contains(" token=s3cret"));
        assert_eq!(Message::parse(&line), Some(Message::Ready { index: 1, host: "h".into(), identity: Some(ours) }));
    }

    #[test]
    fn missing_workers_are_listed_as_ranges() {
        assert_eq!(missing_workers(8, [0, 1, 4]), "2-3, 5-7");
        assert_eq!(missing_workers(3, [1]), "0, 2");
        assert_eq!(missing_workers(2, [0, 1]), "");
    }

    #[test]
    fn missing_pods_are_named_when_hostnames_follow_the_job() {
        let arrived: BTreeMap<u32, (String, ())> =
            [(0, ("sharebench-0".to_string(), ())), (2, ("sharebench-2".to_string(), ()))].into_iter().collect();
        assert_eq!(describe_missing(4, &arrived), "1, 3 (pods sharebench-1, sharebench-3)");
        let local: BTreeMap<u32, (String, ())> = [(0, ("node".to_string(), ()))].into_iter().collect();
        assert_eq!(describe_missing(2, &local), "1");
    }
}
