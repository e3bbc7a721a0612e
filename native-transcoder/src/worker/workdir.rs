//! The work directory a transcode writes into before its ladder is published, and the clean-up
//! of the ones dead workers left behind.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::fsutil;

/// A work directory `media/.tmp-<video>-<random>/` guarded by an exclusive lock on the sibling
/// file `<dir>.lock`: the OS drops the lock when the process dies (even by SIGKILL), which is
/// how a starting worker tells a dead worker's leftovers from a live worker's output.
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
    lock_path: PathBuf,
    _lock: std::fs::File,
    pub(super) published: bool,
}

impl WorkDir {
    pub(super) fn create(media: &Path, video: &str) -> std::io::Result<WorkDir> {
        let path = media.join(format!(".tmp-{video}-{}", fsutil::random_hex(6)));
        let lock_path = path.with_extension("lock");
        let lock = std::fs::File::create(&lock_path)?;
        lock.lock()?;
        std::fs::create_dir(&path)?;
        Ok(WorkDir {
            path,
            lock_path,
            _lock: lock,
            published: false,
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

pub fn clean_leftovers(media: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(media)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(".tmp-") || !path.is_dir() {
            continue;
        }
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        if lock.try_lock().is_ok() {
            std::fs::remove_dir_all(&path)?;
            let _ = std::fs::remove_file(&lock_path);
            tracing::info!(dir = %path.display(), "removed a dead worker's work directory");
            n += 1;
        }
    }
    Ok(n)
}
