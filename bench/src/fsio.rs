//! Files that must never be half-written or silently replaced: atomic writes with an explicit overwrite policy.
//!
//! Data goes to a temporary file in the destination's directory, is flushed to disk, and then appears under its
//! final name in one step. Without `force`, the final step is a hard link, which fails if the name exists, so
//! even two writers racing for the same name cannot clobber each other.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Allow,
}

impl Overwrite {
    pub fn from_force(force: bool) -> Self {
        if force {
            Overwrite::Allow
        } else {
            Overwrite::Refuse
        }
    }
}

fn temp_path(path: &Path, attempt: u32) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{attempt}", std::process::id()))
}

/// A new temporary file beside `path`, created exclusively: never through a link planted at its name (O_EXCL
/// fails on any existing name, a symbolic link included), trying other names if one is taken.
fn create_temp(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut attempt = 0;
    loop {
        let tmp = temp_path(path, attempt);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `name` is a temporary file [`write_atomic`] leaves behind when it is killed mid-write.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

fn exists_error(path: &Path) -> Error {
    Error::new(format!("{} already exists", path.display()))
        .fix("pass --force to replace it, or choose another output path")
}

/// Writes `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &[u8], overwrite: Overwrite) -> Result<()> {
    if overwrite == Overwrite::Refuse && path.exists() {
        return Err(exists_error(path));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    let (tmp, mut file) = create_temp(path).map_err(|e| Error::io("create", path, e))?;
    let written = file.write_all(contents).and_then(|_| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    let placed = match overwrite {
        Overwrite::Allow => std::fs::rename(&tmp, path),
        Overwrite::Refuse => std::fs::hard_link(&tmp, path).and_then(|_| std::fs::remove_file(&tmp)),
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(exists_error(path));
        }
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/result.json");
        write_atomic(&path, b"one", Overwrite::Refuse).unwrap();
        let err = write_atomic(&path, b"two", Overwrite::Refuse).unwrap_err();
        assert!(err.problem.contains("already exists"));
        assert!(err.fix.unwrap().contains("--force"));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two", Overwrite::Allow).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep me").unwrap();
        let path = dir.path().join("out/report.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, temp_path(&path, 0)).unwrap();
        write_atomic(&path, b"report", Overwrite::Allow).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
        assert_eq!(std::fs::read(&path).unwrap(), b"report");
        assert!(is_temp_name(".report.json.tmp-77-0") && !is_temp_name("report.json"));
    }
}
