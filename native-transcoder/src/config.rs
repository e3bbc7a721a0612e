//! Configuration shared by both roles: the events secret and the keys derived from it, the
//! media origin's playback keys, and the checks that turn a missing prerequisite into a sentence
//! at start-up rather than a failed job.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use streamgate_core::job_intake::KEY_PURPOSE as JOBS;
use streamgate_core::keys;

/// The keys derived from `events_secret` (and its previous value during rotation).
#[derive(Clone)]
pub struct Keys {
    /// Signs events (purpose `events`).
    pub events: [u8; 32],
    /// Checks upload tokens (purpose `upload`): current first, then previous.
    pub upload: Vec<[u8; 32]>,
    /// Checks jobs the app hands over by HTTP (purpose `jobs`): current first, then previous.
    pub jobs: Vec<[u8; 32]>,
}

/// A secret that is set must be as long as the Spin side requires ([`keys::MIN_SECRET_BYTES`]):
/// a start-up error naming the variable, so the two sides never disagree about a key.
fn check_length(name: &str, secret: &str) -> Result<()> {
    keys::check_secret(name, secret).map_err(|e| {
        anyhow::anyhow!(
            "{name} needs at least {} bytes, it has {}; use the same value as the Spin app \
             (scripts/up generates 64 hex characters in .spin/secrets.env)",
            keys::MIN_SECRET_BYTES,
            e.len
        )
    })
}

/// A secret and, during a rotation, its previous value, current first, each checked for length
/// under the names it is set by: `STREAMGATE_<var>` or `SPIN_VARIABLE_<var>`, and the same with
/// `_PREVIOUS`. A previous value that is absent or empty means no rotation.
fn current_then_previous<'a>(
    what: &str,
    var: &str,
    current: &'a str,
    previous: Option<&'a str>,
) -> Result<Vec<&'a str>> {
    check_length(
        &format!("the {what} (STREAMGATE_{var} or SPIN_VARIABLE_{var})"),
        current,
    )?;
    let mut secrets = vec![current];
    if let Some(previous) = previous.filter(|s| !s.is_empty()) {
        check_length(
            &format!(
                "the previous {what} (STREAMGATE_{var}_PREVIOUS or \
                 SPIN_VARIABLE_{var}_PREVIOUS)"
            ),
            previous,
        )?;
        secrets.push(previous);
    }
    Ok(secrets)
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
        // Surrounding whitespace is not key material.
        let secrets = current_then_previous(
            "events secret",
            "EVENTS_SECRET",
            current,
            previous.map(str::trim),
        )?;
        Ok(Keys {
            events: keys::derive(current, "events"),
            upload: secrets.iter().map(|s| keys::derive(s, "upload")).collect(),
            jobs: secrets.iter().map(|s| keys::derive(s, JOBS)).collect(),
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
        let keys = current_then_previous("playback secret", "PLAYBACK_SECRET", current, previous)?;
        Ok(Some(PlaybackKeys {
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789abcdef";
    const OLD: &str = "fedcba9876543210fedcba9876543210";
    const SHORT: &str = "0123456789abcdef0123456789abcde"; // 31 bytes

    fn error_of<T>(r: Result<T>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_events_secret_needs_32_bytes() {
        let keys = Keys::from_secrets(Some(GOOD), Some(OLD)).unwrap();
        assert_eq!(keys.upload.len(), 2);
        assert_eq!(keys.events, keys::derive(GOOD, "events"));
        assert_eq!(keys.upload[1], keys::derive(OLD, "upload"));
        assert_eq!(
            keys.jobs,
            [keys::derive(GOOD, "jobs"), keys::derive(OLD, "jobs")]
        );
        // Empty or blank previous: no rotation.
        assert_eq!(
            Keys::from_secrets(Some(GOOD), Some(" "))
                .unwrap()
                .upload
                .len(),
            1
        );

        let e = error_of(Keys::from_secrets(Some(SHORT), None));
        assert!(
            e.contains("STREAMGATE_EVENTS_SECRET ") && e.contains("32 bytes"),
            "{e}"
        );
        let e = error_of(Keys::from_secrets(Some(GOOD), Some(SHORT)));
        assert!(
            e.contains("STREAMGATE_EVENTS_SECRET_PREVIOUS") && e.contains("32 bytes"),
            "{e}"
        );
        assert!(!e.contains(SHORT), "the secret is not printed: {e}");
        // Surrounding whitespace is not key material.
        let padded = format!("  {SHORT}\n");
        assert!(Keys::from_secrets(Some(&padded), None).is_err());
        let e = error_of(Keys::from_secrets(None, Some(GOOD)));
        assert!(e.contains("no events secret"), "{e}");
    }

    #[test]
    fn every_playback_secret_needs_32_bytes() {
        assert!(PlaybackKeys::from_secrets(None, Some(SHORT))
            .unwrap()
            .is_none());
        let keys = PlaybackKeys::from_secrets(Some(GOOD), Some(OLD))
            .unwrap()
            .unwrap();
        assert_eq!(keys.refs(), [GOOD.as_bytes(), OLD.as_bytes()]);
        let e = error_of(PlaybackKeys::from_secrets(Some(SHORT), None));
        assert!(
            e.contains("STREAMGATE_PLAYBACK_SECRET ") && e.contains("32 bytes"),
            "{e}"
        );
        let e = error_of(PlaybackKeys::from_secrets(Some(GOOD), Some(SHORT)));
        assert!(e.contains("STREAMGATE_PLAYBACK_SECRET_PREVIOUS"), "{e}");
        assert!(!e.contains(SHORT), "the secret is not printed: {e}");
    }
}
