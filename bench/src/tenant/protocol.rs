//! The reporting protocol between `sharebench run --exec` and the command it runs (pure: parsing only).
//!
//! The command writes text lines to the FIFO named by `SHAREBENCH_REPORT` (any number of its processes may; a
//! line is written in one `write`, so lines do not interleave):
//!
//! ```text
//! ready                                         model loaded and warmed up: the command can be measured
//! request latency_ms=4.82                       one request done, with its latency
//! request latency_ms=4.82 start_ns=1764050000123456789 items=8 tokens=0
//! request latency_ms=812.5 ttft_ms=61.2 tokens=128 prompt_tokens=512   a streamed LLM request
//! ```
//!
//! `start_ns` is when the request started (intended start for an open loop), on the wall clock in Unix ns
//! (`time.time_ns()`, `date +%s%N`); without it the request ended when its line arrived. `items` and `tokens` are
//! optional counts (images in a batch, generated output tokens). A streaming request may add `ttft_ms` (time to
//! its first output token, at most its latency) and `prompt_tokens`; its time per output token is then
//! TPOT = (latency - TTFT) / (tokens - 1), for 2 tokens or more. Blank lines and lines starting with `#` are
//! ignored. Anything else is a protocol error naming the line; it never stops the run, and every valid line is
//! kept.

use std::fmt;

/// Longest line read (a longer one may have been split by the pipe: a protocol error).
pub const MAX_LINE: usize = 4096;
/// Longest latency a request may report: the record format's limit (about 18 minutes).
pub const MAX_LATENCY_NS: u64 = (1 << 40) - 1;

/// The environment variables the command is told who it is and what to do by.
pub mod env {
    /// Path of the FIFO to write protocol lines to.
    pub const REPORT: &str = "SHAREBENCH_REPORT";
    /// Path of a file that appears when the common window starts: `<start_unix_ns> <end_unix_ns>`.
    pub const START_FILE: &str = "SHAREBENCH_START_FILE";
    pub const WORKER_INDEX: &str = "SHAREBENCH_WORKER_INDEX";
    pub const WORKERS: &str = "SHAREBENCH_WORKERS";
    pub const RUN_ID: &str = "SHAREBENCH_RUN_ID";
    /// The sharing mode being measured (`timeslice`, `mps`, `unverified`).
    pub const MODE: &str = "SHAREBENCH_MODE";
    /// The worker's group in a scenario, when it has one.
    pub const GROUP: &str = "SHAREBENCH_GROUP";
    /// Target requests per second (open loop); absent for a closed loop.
    pub const RATE: &str = "SHAREBENCH_RATE";
    /// `poisson`, `fixed` or `closed`.
    pub const ARRIVALS: &str = "SHAREBENCH_ARRIVALS";
    /// Seed for the command's own arrival process.
    pub const SEED: &str = "SHAREBENCH_SEED";
    /// Length of the measured window in seconds.
    pub const DURATION_S: &str = "SHAREBENCH_DURATION_S";
}

/// One line of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Ready,
    Request(Request),
}

/// One request the command served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    pub latency_ns: u64,
    /// When it started (Unix ns), if the command said.
    pub start_unix_ns: Option<u64>,
    pub items: Option<u64>,
    /// Output tokens it generated.
    pub tokens: Option<u64>,
    /// Time to its first output token (a streaming request), at most its latency.
    pub ttft_ns: Option<u64>,
    /// Tokens of its prompt.
    pub prompt_tokens: Option<u64>,
}

impl Request {
    /// Time per output token after the first: (latency - TTFT) / (tokens - 1), for 2 tokens or more.
    pub fn tpot_ns(&self) -> Option<u64> {
        let (ttft, tokens) = (self.ttft_ns?, self.tokens?);
        (tokens >= 2).then(|| (self.latency_ns - ttft) / (tokens - 1))
    }
}

/// Why a line is not protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The line as received (cut to 80 characters).
    pub line: String,
    pub why: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.line, self.why)
    }
}

fn error(line: &str, why: impl Into<String>) -> ProtocolError {
    let shown: String = line.chars().take(80).collect();
    ProtocolError { line: if shown.len() < line.len() { format!("{shown}...") } else { shown }, why: why.into() }
}

/// Parses one line (without its newline). `Ok(None)`: a blank line or a comment.
pub fn parse_line(line: &str) -> Result<Option<Message>, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(error(line, format!("longer than {MAX_LINE} bytes")));
    }
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut words = text.split_whitespace();
    match words.next() {
        Some("ready") => match words.next() {
            None => Ok(Some(Message::Ready)),
            Some(extra) => Err(error(line, format!("`ready` takes nothing after it, got {extra:?}"))),
        },
        Some("request") => parse_request(line, words).map(|r| Some(Message::Request(r))),
        Some(other) => {
            Err(error(line, format!("unknown message {other:?} (expected `ready` or `request latency_ms=...`)")))
        }
        None => Ok(None),
    }
}

fn parse_request<'a>(line: &str, fields: impl Iterator<Item = &'a str>) -> Result<Request, ProtocolError> {
    let mut request = Request::default();
    let mut latency = None;
    for field in fields {
        let (key, value) = field.split_once('=').ok_or_else(|| error(line, format!("{field:?} is not key=value")))?;
        let count = || value.parse::<u64>().map_err(|_| error(line, format!("{key}={value:?} is not a whole number")));
        let seen = match key {
            "latency_ms" => latency.replace(parse_latency(line, key, value)?).is_some(),
            "ttft_ms" => request.ttft_ns.replace(parse_latency(line, key, value)?).is_some(),
            "prompt_tokens" => request.prompt_tokens.replace(count()?).is_some(),
            "start_ns" => request.start_unix_ns.replace(count()?).is_some(),
            "items" => request.items.replace(count()?).is_some(),
            "tokens" => request.tokens.replace(count()?).is_some(),
            _ => {
                return Err(error(
                    line,
                    format!(
                        "unknown field {key:?} (known: latency_ms, start_ns, items, tokens, ttft_ms, prompt_tokens)"
                    ),
                ))
            }
        };
        if seen {
            return Err(error(line, format!("{key} is given twice")));
        }
    }
    request.latency_ns = latency.ok_or_else(|| error(line, "a request needs latency_ms=<milliseconds>"))?;
    if let Some(ttft) = request.ttft_ns {
        if ttft > request.latency_ns {
            return Err(error(line, "ttft_ms is above latency_ms: the first token cannot come after the last"));
        }
        if request.tokens == Some(0) {
            return Err(error(line, "tokens=0 with a ttft_ms: a first token was reported, so at least 1"));
        }
    }
    Ok(request)
}

fn parse_latency(line: &str, key: &str, value: &str) -> Result<u64, ProtocolError> {
    let ms: f64 = value.parse().map_err(|_| error(line, format!("{key}={value:?} is not a number")))?;
    let ns = ms * 1e6;
    if !(ns.is_finite() && ns >= 0.0 && ns <= MAX_LATENCY_NS as f64) {
        return Err(error(line, format!("{key}={value} is not in 0..{}", MAX_LATENCY_NS / 1_000_000)));
    }
    Ok(ns.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_requests_parse() {
        assert_eq!(parse_line("ready"), Ok(Some(Message::Ready)));
        assert_eq!(parse_line("  ready \r"), Ok(Some(Message::Ready)));
        let r = parse_line("request latency_ms=4.5").unwrap().unwrap();
        assert_eq!(r, Message::Request(Request { latency_ns: 4_500_000, ..Request::default() }));
        let r = parse_line("request items=8 latency_ms=0.001 start_ns=1764050000123456789 tokens=3").unwrap();
        assert_eq!(
            r,
            Some(Message::Request(Request {
                latency_ns: 1_000,
                start_unix_ns: Some(1_764_050_000_123_456_789),
                items: Some(8),
                tokens: Some(3),
                ..Request::default()
            }))
        );
    }

    #[test]
    fn a_streamed_request_carries_its_first_token_and_its_time_per_output_token() {
        let Ok(Some(Message::Request(r))) =
            parse_line("request latency_ms=812.5 ttft_ms=61.2 tokens=128 prompt_tokens=512")
        else {
            panic!("not a request")
        };
        assert_eq!((r.ttft_ns, r.tokens, r.prompt_tokens), (Some(61_200_000), Some(128), Some(512)));
        assert_eq!(r.tpot_ns(), Some((812_500_000 - 61_200_000) / 127));
        let one = |line| match parse_line(line) {
            Ok(Some(Message::Request(r))) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(one("request latency_ms=50 ttft_ms=50 tokens=1").tpot_ns(), None, "one token: no TPOT");
        assert_eq!(one("request latency_ms=50 ttft_ms=20").tpot_ns(), None, "no token count: TTFT only");
    }

    #[test]
    fn blank_lines_and_comments_are_ignored() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   "), Ok(None));
        assert_eq!(parse_line("# loading the model"), Ok(None));
    }

    #[test]
    fn garbage_is_named_with_the_reason() {
        let cases = [
            ("hello", "unknown message \"hello\""),
            ("request", "needs latency_ms"),
            ("request latency_ms=abc", "is not a number"),
            ("request latency_ms=-1", "is not in 0.."),
            ("request latency_ms=NaN", "is not in 0.."),
            ("request latency_ms=1e12", "is not in 0.."),
            ("request latency_ms=1 items=2.5", "is not a whole number"),
            ("request latency_ms=1 latency_ms=2", "given twice"),
            ("request latency_ms=1 color=red", "unknown field \"color\""),
            ("request 4.5", "is not key=value"),
            ("ready now", "takes nothing after it"),
            ("request latency_ms=10 ttft_ms=12 tokens=5", "ttft_ms is above latency_ms"),
            ("request latency_ms=10 ttft_ms=2 tokens=0", "tokens=0 with a ttft_ms"),
            ("request latency_ms=10 ttft_ms=soon", "ttft_ms=\"soon\" is not a number"),
            ("request latency_ms=10 prompt_tokens=-3", "is not a whole number"),
        ];
        for (line, why) in cases {
            let e = parse_line(line).unwrap_err();
            assert!(e.why.contains(why), "{line}: {}", e.why);
            assert_eq!(e.line, line);
        }
    }

    #[test]
    fn long_lines_are_refused_and_shown_cut() {
        let long = format!("request latency_ms=1 {}", "x".repeat(MAX_LINE));
        let e = parse_line(&long).unwrap_err();
        assert!(e.why.contains("longer than 4096"));
        assert!(e.line.ends_with("...") && e.line.len() == 83);
    }
}
