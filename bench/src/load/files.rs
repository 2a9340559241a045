//! Which files a directory of results holds: result files (`*.json`, `*.jsonl`, and the same gzip-compressed,
//! `*.json.gz`), never sharebench's own other outputs (reports, plans, compare and calibration summaries,
//! Kubernetes patches), and never a directory twice (a symbolic link back up the tree is named once, not followed).
//! Only regular files are read (a FIFO named `*.json` would block for ever, `/dev/zero` never ends); what cannot
//! be read (a directory without permission, a path too long) is named, never silently dropped.
//! Reads the file system; `read_text` also decompresses, within caps that no result reaches and every bomb does:
//! a line at most [`MAX_LINE_BYTES`], a compressed file at most [`MAX_INFLATION`] times its size (plus 64 MiB).
//! Bytes that are not UTF-8 (a stray byte in `kubectl logs`) are replaced, so only their line can fail.

use flate2::read::GzDecoder;
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// File names sharebench writes that hold no worker result.
pub const OWN_OUTPUTS: &[&str] = &[
    "report.json",
    "trace.json",
    "compare.json",
    "plan.json",
    "calibrate.json",
    "point-patch.json",
    "observer-effect.json",
];

/// What a walk of a directory found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    /// sharebench's own outputs seen and skipped.
    pub own_outputs: usize,
    /// The plans among them (`plan.json`): each is a study, its points the runs under it.
    pub plans: Vec<PathBuf>,
    /// Directories reached again through a symbolic link (each named once, not followed).
    pub loops: Vec<String>,
    /// What could not be walked or read, each with its path and why (e.g. a subdirectory without permission).
    pub unreadable: Vec<(String, String)>,
}

/// Longest line read (a result of 8 million kernels); a longer one is skipped and named, never held whole.
pub const MAX_LINE_BYTES: usize = 256 << 20;
/// Most a compressed file may grow when read: results compress about 3 to 1, a bomb thousands to 1.
pub const MAX_INFLATION: u64 = 32;

/// Whether `path` names a result file by its extension (compressed or not).
pub fn is_result_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    plain.ends_with(".json") || plain.ends_with(".jsonl")
}

/// The file `plan --kubernetes` collects a point's results into; empty when no Pod reported one.
pub const POINT_RESULTS: &str = "results.jsonl";

/// Whether `path` is one of sharebench's own outputs: its name is one of [`OWN_OUTPUTS`] and it parses as JSON
/// without a worker result in it, or it is a point's empty [`POINT_RESULTS`] (plan.txt says why no Pod reported).
/// Garbage under such a name is not skipped: it fails like any other input.
pub fn is_own_output(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.strip_suffix(".gz").unwrap_or(name) == POINT_RESULTS {
        return read_text(path).is_ok_and(|text| text.trim().is_empty());
    }
    if !OWN_OUTPUTS.contains(&name) {
        return false;
    }
    read_text(path).is_ok_and(|text| {
        !text.contains("\"sharebench-result\"") && serde_json::from_str::<serde_json::Value>(&text).is_ok()
    })
}

/// Walks `dir` recursively, in name order.
pub fn walk(dir: &Path) -> std::io::Result<Walk> {
    let mut walk = Walk::default();
    let mut seen = BTreeSet::new();
    visit(dir, &mut seen, &mut walk)?;
    Ok(walk)
}

fn visit(dir: &Path, seen: &mut BTreeSet<(u64, u64)>, walk: &mut Walk) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if !seen.insert((meta.dev(), meta.ino())) {
        let target = std::fs::canonicalize(dir).map(|p| p.display().to_string()).unwrap_or_else(|_| "?".into());
        walk.loops.push(format!("{} leads back to {target}: not followed", dir.display()));
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        match entry {
            Ok(e) => entries.push(e.path()),
            Err(e) => walk.unreadable.push((dir.display().to_string(), format!("an entry cannot be read: {e}"))),
        }
    }
    entries.sort();
    for path in entries {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                walk.unreadable.push((path.display().to_string(), e.to_string()));
                continue;
            }
        };
        if meta.is_dir() {
            if let Err(e) = visit(&path, seen, walk) {
                walk.unreadable.push((path.display().to_string(), format!("cannot read this directory: {e}")));
            }
        } else if is_result_name(&path) && !meta.is_file() {
            walk.unreadable.push((path.display().to_string(), not_regular(&meta)));
        } else if is_result_name(&path) {
            if is_own_output(&path) {
                walk.own_outputs += 1;
                if path.file_name().is_some_and(|n| n == "plan.json") {
                    walk.plans.push(path);
                }
            } else {
                walk.files.push(path);
            }
        }
    }
    Ok(())
}

/// Why a path is not read: what it is instead of a regular file.
fn not_regular(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    format!("{what}, not a regular file: not read")
}

fn invalid(text: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, text)
}

/// Text read by lines within the caps: lines not valid UTF-8 have their bad bytes replaced, a line longer than
/// [`MAX_LINE_BYTES`] is dropped (its number in `too_long`) without ever being held whole.
#[derive(Debug, Default)]
pub struct CappedText {
    pub text: String,
    pub too_long: Vec<usize>,
}

/// Reads `reader` by lines within the caps. Text no longer than one line's cap is read whole (no line in it can
/// be too long) and checked as UTF-8 at once; longer text is read line by line from there.
pub fn read_capped(reader: impl Read) -> std::io::Result<CappedText> {
    read_capped_expecting(reader, 0)
}

/// [`read_capped`] of a reader expected to hold about `bytes` (a file's size): read into one allocation.
fn read_capped_expecting(mut reader: impl Read, bytes: u64) -> std::io::Result<CappedText> {
    let mut head = Vec::with_capacity(bytes.min(MAX_LINE_BYTES as u64 + 1) as usize);
    (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_to_end(&mut head)?;
    if head.len() <= MAX_LINE_BYTES {
        let text = String::from_utf8(head).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        return Ok(CappedText { text, too_long: vec![] });
    }
    read_capped_lines(std::io::Cursor::new(head).chain(reader))
}

/// Reads `reader` line by line within the caps.
fn read_capped_lines(reader: impl Read) -> std::io::Result<CappedText> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let mut out = CappedText::default();
    let (mut line, mut number, mut dropping) = (Vec::new(), 1usize, false);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let (part, ends) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..=at], true),
            None => (chunk, false),
        };
        let used = part.len();
        if !dropping {
            if line.len() + used > MAX_LINE_BYTES {
                dropping = true;
                line.clear();
            } else {
                line.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if ends {
            if dropping {
                out.too_long.push(number);
                out.text.push('\n');
            } else {
                out.text.push_str(&String::from_utf8_lossy(&line));
            }
            line.clear();
            (number, dropping) = (number + 1, false);
        }
    }
    if dropping {
        out.too_long.push(number);
    } else {
        out.text.push_str(&String::from_utf8_lossy(&line));
    }
    Ok(out)
}

/// The text of a regular file, gunzipped when its name ends in `.gz`, read within the caps.
pub fn read_capped_file(path: &Path) -> std::io::Result<CappedText> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid(not_regular(&meta)));
    }
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let limit = meta.len().saturating_mul(MAX_INFLATION) + (64 << 20);
        let mut inflated = GzDecoder::new(file).take(limit + 1);
        let text = read_capped(&mut inflated)?;
        if inflated.limit() == 0 {
            return Err(invalid(format!(
                "decompresses to more than {} MiB, {MAX_INFLATION} times its size: not a result file (a compression bomb?)",
                limit >> 20
            )));
        }
        Ok(text)
    } else {
        read_capped_expecting(file, meta.len())
    }
}

/// The text of a file, gunzipped when its name ends in `.gz`; a line over the cap is an error.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let capped = read_capped_file(path)?;
    match capped.too_long.first() {
        Some(line) => Err(invalid(format!("line {line} is longer than {} MiB", MAX_LINE_BYTES >> 20))),
        None => Ok(capped.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn result_names_compressed_or_not() {
        for name in ["w0.json", "r.jsonl", "w0.json.gz", "results.jsonl.gz"] {
            assert!(is_result_name(Path::new(name)), "{name}");
        }
        for name in ["report.md", "chart.png", "w0.gz", "json"] {
            assert!(!is_result_name(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn own_outputs_are_skipped_and_garbage_under_their_names_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plan.json"), "{\"format\":\"sharebench-plan\"}").unwrap();
        std::fs::write(dir.path().join("point-patch.json"), "[{\"op\":\"replace\"}]").unwrap();
        std::fs::write(dir.path().join("compare.json"), "not json at all").unwrap();
        std::fs::write(dir.path().join("w0.json"), "{}").unwrap();
        std::fs::write(dir.path().join("results.jsonl"), "").unwrap();
        let w = walk(dir.path()).unwrap();
        assert_eq!(w.own_outputs, 3);
        let names: Vec<_> = w.files.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["compare.json", "w0.json"]);
    }

    #[test]
    fn a_symlink_loop_is_named_once_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("w0.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("up")).unwrap();
        let w = walk(dir.path()).unwrap();
        assert_eq!(w.files.len(), 1, "{:?}", w.files);
        assert_eq!(w.loops.len(), 1, "{:?}", w.loops);
        assert!(w.loops[0].contains("run/up leads back to"), "{}", w.loops[0]);
    }

    #[test]
    fn only_regular_files_are_read_and_what_cannot_be_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("b.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.json")).unwrap();
        std::fs::write(dir.path().join("w0.json"), "{}").unwrap();
        // An entry that cannot be looked at (here a dangling link; a directory without permission or a path too
        // long fail the same way) is named, and the walk goes on.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("gone")).unwrap();
        let w = walk(dir.path()).unwrap();
        assert_eq!(w.files.len(), 1);
        assert!(w.unreadable.iter().any(|(p, _)| p.ends_with("/gone")), "{:?}", w.unreadable);
        let why: Vec<String> = w.unreadable.iter().map(|(p, why)| format!("{p}: {why}")).collect();
        assert!(why.iter().any(|l| l.contains("b.json: a FIFO, not a regular file")), "{why:?}");
        assert!(why.iter().any(|l| l.contains("zero.json: a device, not a regular file")), "{why:?}");
        assert!(read_text(&dir.path().join("b.json")).unwrap_err().to_string().contains("FIFO"));
    }

    #[test]
    fn stray_bytes_cost_only_their_line_and_overlong_lines_are_dropped_not_held() {
        let capped = read_capped(&b"good line\n\xff\xfe bad bytes\nlast"[..]).unwrap();
        assert_eq!(capped.text, "good line\n\u{fffd}\u{fffd} bad bytes\nlast");
        let long: Vec<u8> = [b"a\n".as_slice(), &vec![b'x'; MAX_LINE_BYTES + 10], b"\nz\n"].concat();
        let capped = read_capped(long.as_slice()).unwrap();
        assert_eq!(capped.too_long, [2]);
        assert_eq!(capped.text, "a\n\nz\n");
    }

    #[test]
    fn a_compression_bomb_is_refused_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.json.gz");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..200 {
            gz.write_all(&zeros).unwrap(); // 200 MiB of one line, a few hundred KB compressed
        }
        gz.finish().unwrap();
        let err = read_text(&path).unwrap_err().to_string();
        assert!(err.contains("compression bomb") || err.contains("longer than"), "{err}");
    }

    #[test]
    fn compressed_files_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w0.json.gz");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::best());
        gz.write_all(b"{\"a\":1}\n").unwrap();
        gz.finish().unwrap();
        assert_eq!(read_text(&path).unwrap(), "{\"a\":1}\n");
        std::fs::write(dir.path().join("bad.json.gz"), b"not gzip").unwrap();
        assert!(read_text(&dir.path().join("bad.json.gz")).is_err());
    }
}
