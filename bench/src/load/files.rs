//! Which files a directory of results holds: result files (`*.json`, `*.jsonl`, and the same gzip-compressed,
//! `*.json.gz`), never sharebench's own other outputs (reports, plans, compare and calibration summaries,
//! Kubernetes patches), and never a directory twice (a symbolic link back up the tree is named once, not followed).
//! Reads the file system; `read_text` also decompresses.

use flate2::read::GzDecoder;
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// File names sharebench writes that hold no worker result.
pub const OWN_OUTPUTS: &[&str] =
    &["report.json", "trace.json", "compare.json", "plan.json", "calibrate.json", "point-patch.json"];

/// What a walk of a directory found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    /// sharebench's own outputs seen and skipped.
    pub own_outputs: usize,
    /// Directories reached again through a symbolic link (each named once, not followed).
    pub loops: Vec<String>,
}

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
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            visit(&path, seen, walk)?;
        } else if is_result_name(&path) {
            if is_own_output(&path) {
                walk.own_outputs += 1;
            } else {
                walk.files.push(path);
            }
        }
    }
    Ok(())
}

/// The text of a file, gunzipped when its name ends in `.gz`.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
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
