//! Configuration shared by both roles: the events secret and the keys derived from it, the
//! media origin's playback keys, and the checks that turn a missing prerequisite into a sentence
//! at start-up rather than a failed job.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use streamgate_core::keys;

/// The keys derived from `events_secret` (and its previous value during rotation).
#[derive(Clone)]
pub struct Keys {
    /// Signs events (purpose `events`).
    pub events: [u8; 32],
    /// Checks upload tokens (purpose `upload`): current first, then previous.
    pub upload: Vec<[u8; 32]>,
}

impl Keys {
    pub fn from_secrets(current: Option<&str>, previous: Option<&str>) -> Result<Keys> {
        let current = current.map(str::trim).filter(|s| !s.is_empty());
        let Some(current) = current else {
            bail!(
                "no events secret: set STREAMGATE_EVENTS_SECRET (or SPIN_VARIABLE_EVENTS_SECRET) \
                 to the Spin app's events_secret (scripts/up generates one in .spin/secrets.env)"
            );
        };
        let mut upload = vec![keys::derive(current, "upload")];
        if let Some(previous) = previous.map(str::trim).filter(|s| !s.is_empty()) {
            upload.push(keys::derive(previous, "upload"));
        }
        Ok(Keys {
            events: keys::derive(current, "events"),
            upload,
        })
    }

    pub fn upload_refs(&self) -> Vec<&[u8]> {
        self.upload.iter().map(|k| k.as_slice()).collect()
    }
}

/// The media origin's keys: the raw bytes of `playback_secret` and, during a rotation,
/// `playback_secret_previous`, exactly as the playback component signs with them (never derived
/// from `events_secret`).
#[derive(Clone)]
pub struct PlaybackKeys {
    /// Current first, then previous.
    pub keys: Vec<Vec<u8>>,
}

impl PlaybackKeys {
    /// `None` when no current secret is set (the origin then refuses media with 503); an error
    /// when one is set but shorter than the playback component accepts.
    pub fn from_secrets(
        current: Option<&str>,
        previous: Option<&str>,
    ) -> Result<Option<PlaybackKeys>> {
        let Some(current) = current.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let min = streamgate_core::session::MIN_SECRET_BYTES;
        if current.len() < min {
            bail!(
                "the playback secret (STREAMGATE_PLAYBACK_SECRET or SPIN_VARIABLE_PLAYBACK_SECRET) \
                 needs at least {min} bytes"
            );
        }
        let mut keys = vec![current.as_bytes().to_vec()];
        if let Some(previous) = previous.filter(|s| !s.is_empty()) {
            keys.push(previous.as_bytes().to_vec());
        }
        Ok(Some(PlaybackKeys { keys }))
    }

    pub fn refs(&self) -> Vec<&[u8]> {
        self.keys.iter().map(|k| k.as_slice()).collect()
    }
}

/// Fails with a message naming the fix when ffmpeg or ffprobe cannot be run.
pub fn check_ffmpeg(ffmpeg: &Path, ffprobe: &Path) -> Result<()> {
    for tool in [ffmpeg, ffprobe] {
        let out = Command::new(tool)
            .arg("-version")
            .output()
            .with_context(|| {
                format!(
                    "cannot run {}: ffmpeg is not installed or not on PATH; run scripts/up (it \
                 installs the Debian package `ffmpeg`) or `apt-get install ffmpeg`",
                    tool.display()
                )
            })?;
        if !out.status.success() {
            bail!(
                "{} -version failed ({}); reinstall ffmpeg (scripts/up installs it)",
                tool.display(),
                out.status
            );
        }
    }
    Ok(())
}

/// The marker a delete job leaves for a deleted video (`deleted/<video id>`, holding the unix
/// time of the delete): the origin refuses that video's upload URL from then on.
pub fn tombstone(media_dir: &Path, video: &str) -> std::path::PathBuf {
    media_dir.join("deleted").join(video)
}

/// Creates `media_dir` and the folders both roles use.
pub fn prepare_media_dir(media_dir: &Path) -> Result<()> {
    for sub in ["uploads", "sources", "media", "outbox", "deleted"] {
        let dir = media_dir.join(sub);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the media folder {}", dir.display()))?;
    }
    Ok(())
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
