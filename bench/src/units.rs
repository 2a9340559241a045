//! Parsing and printing of durations and sizes as people type and read them (`500ms`, `2m`, `256MiB`, `612 us`).
//! Pure functions.

use std::time::Duration;

/// Parses `1.5s`, `500ms`, `250us`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("'{text}' is negative: give a duration of 0 or more (examples: 30s, 500ms, 2m)"));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration (examples: 30s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}' (use h, m, s, ms or us)")),
    };
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// [`parse_duration`], refusing zero (a deadline of 0 s could never be met).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    match d.is_zero() {
        true => Err(format!("'{text}' is zero: give a deadline longer than 0 (examples: 5s, 500ms)")),
        false => Ok(d),
    }
}

/// Checks a `HOST:PORT` address before anything uses it: a host, and a port in 1..=65535.
pub fn check_host_port(text: &str) -> Result<(), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not HOST:PORT (e.g. sharebench-0.sharebench:7777)"))?;
    if host.is_empty() || host.trim_matches(['[', ']']).is_empty() {
        return Err(format!("'{text}' has no host before the port (e.g. 127.0.0.1:7777)"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("'{port}' in '{text}' is not a port in 1..=65535")),
    }
}

/// Parses a latency in milliseconds: a plain number (`5`, `0.5`) or a duration with its unit (`5ms`, `0.5s`,
/// `800us`).
pub fn parse_millis(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<f64>() {
        return match ms.is_finite() && ms > 0.0 {
            true => Ok(ms),
            false => Err(format!("'{text}' is not a positive latency (examples: 5, 5ms, 0.5s)")),
        };
    }
    let d = parse_duration(t)?;
    match d.is_zero() {
        true => Err(format!("'{text}' is not a positive latency (examples: 5, 5ms, 0.5s)")),
        false => Ok(d.as_secs_f64() * 1e3),
    }
}

/// Parses `256MiB`, `1GiB`, `64KiB`, `1G` (powers of 1000), or a plain number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size (examples: 256MiB, 1GiB)"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "K" | "KB" | "k" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        other => return Err(format!("unknown size unit '{other}' in '{text}' (use KiB, MiB, GiB, K, M, G)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || !(0.0..=1e15).contains(&bytes) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Nanoseconds as a short human figure: `850 ns`, `12.3 us`, `612 us`, `1.25 ms`, `3.40 s`.
pub fn format_ns(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "us")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", three_digits(value))
}

/// A rate with an SI prefix: `66.9 T`, `2.95 G`, `1.20 k`.
pub fn format_si(value: f64) -> String {
    let prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in prefixes {
        if value.abs() >= scale {
            return format!("{} {prefix}", three_digits(value / scale));
        }
    }
    format!("{} ", three_digits(value))
}

/// Three significant digits, without exponent notation.
/// `text` safe to print on a terminal: control characters other than line breaks and tabs (escape sequences
/// that retitle or recolour the terminal, a carriage return that overwrites a line) shown as `\x1b`-style escapes.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// FNV-1a, 64 bits: a stable short hash for names and digests (not for security).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The first `n` characters of `text` (never a byte index inside a character).
pub fn first_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

pub fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        // Below 1, keep three significant digits: 0.512, 0.0019 -> 0.00190.
        let decimals = (2.0 - magnitude.log10().floor()) as usize;
        format!("{value:.decimals$}")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(printable("run\x1b]0;owned\x07-1\r\n"), "run\\x1b]0;owned\\x07-1\\x0d\n");
        assert_eq!(printable("plain\ttext"), "plain\ttext");
    }

    #[test]
    fn first_chars_never_cuts_a_character() {
        assert_eq!(first_chars("GPU-ec48855é-e068", 12), "GPU-ec48855é");
        assert_eq!(first_chars("ab", 12), "ab");
        assert_eq!(first_chars("", 3), "");
    }

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").unwrap_err().contains("not a duration"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown duration unit 'd'"));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1TiB").unwrap_err().contains("unknown size unit"));
    }

    #[test]
    fn figures_print_with_three_digits() {
        assert_eq!(format_ns(850.0), "850 ns");
        assert_eq!(format_ns(12_345.0), "12.3 us");
        assert_eq!(format_ns(612_000.0), "612 us");
        assert_eq!(format_ns(1_250_000.0), "1.25 ms");
        assert_eq!(format_si(66.9e12), "66.9 T");
        assert_eq!(format_si(950.0), "950 ");
        assert_eq!(three_digits(0.512), "0.512");
        assert_eq!(three_digits(0.0019), "0.00190");
        assert_eq!(three_digits(1.5), "1.50");
    }
}
