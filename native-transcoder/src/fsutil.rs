//! Durable file-system steps: what is renamed into place must survive a crash of the process or
//! of the machine, so every rename is preceded by a sync of what it publishes and followed by a
//! sync of the directory that holds the new name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Lowercase hex of `n` random bytes from the OS.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `contents` to `path` so that a reader sees either the old file or the whole new one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        random_hex(6)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Syncs every file and directory under `root` (and `root` itself), so a rename of `root`
/// publishes data that is on disk.
pub fn sync_tree(root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    sync_dir(root)
}

/// Bytes an unprivileged writer can still use on the file system that holds `path`
/// (statvfs(3): `f_bavail × f_frsize`).
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct of the type statvfs fills.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Ids that become path components: video ids, upload ids. Anything else is refused before it
/// gets near the file system. The rule is the job contract's video id rule, so the origin
/// accepts exactly the ids the worker will put in a path; upload ids (32 hex digits) fit it.
pub fn is_safe_id(id: &str) -> bool {
    streamgate_core::pipeline::is_valid_video_id(id)
}

/// A relative path with only normal components (no `..`, no root, no `.` tricks).
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths() {
        assert!(is_safe_id("vid_01-AB"));
        assert!(!is_safe_id(""));
        assert!(!is_safe_id("../x"));
        assert!(!is_safe_id("a/b"));
        assert!(is_safe_relative("sources/abc"));
        assert!(!is_safe_relative("../etc/passwd"));
        assert!(!is_safe_relative("/etc/passwd"));
        assert!(!is_safe_relative("sources/../../x"));
        assert_eq!(random_hex(8).len(), 16);
        assert!(available_bytes(Path::new(".")).unwrap() > 0);
    }
}
