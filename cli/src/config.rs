//! The config dir: sessions per API URL, and uploads in flight. Both files hold secrets (a
//! session token, upload URLs with their tokens), so they are 0600 in a 0700 dir, and replaced
//! whole (write, sync, rename): a crash leaves the old file or the new one, never half of one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{CliError, Result};

pub const SESSIONS_FILE: &str = "sessions.json";
pub const UPLOADS_FILE: &str = "uploads.json";

pub struct Config {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub address: String,
    pub chain_id: u64,
    pub expires_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    /// The API of the last sign-in: the default for the next command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_api: Option<String>,
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
}

/// An upload that has not finished, keyed by [`upload_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingUpload {
    pub api: String,
    pub video_id: String,
    /// The creation URL the API issued with the video.
    pub endpoint: String,
    /// The tus upload URL, once created.
    #[serde(default)]
    pub upload_url: Option<String>,
    pub size: u64,
    /// Every byte is on the origin; what is left is to see the transcode end.
    #[serde(default)]
    pub completed: bool,
}

pub type Uploads = BTreeMap<String, PendingUpload>;

/// The same file (path, size, modification time) sent to the same API resumes; an edited file
/// is a new upload.
pub fn upload_key(api: &str, path: &Path, size: u64, mtime_nanos: u128) -> String {
    format!("{api}|{}|{size}|{mtime_nanos}", path.display())
}

impl Config {
    /// `STREAMGATE_CONFIG_DIR`, else `<the platform's config dir>/streamgate`.
    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os("STREAMGATE_CONFIG_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => dirs::config_dir()
                .ok_or_else(|| {
                    CliError::local("no config directory: set STREAMGATE_CONFIG_DIR or HOME")
                })?
                .join("streamgate"),
        };
        Ok(Self { dir })
    }

    pub fn sessions(&self) -> Result<Sessions> {
        self.read(SESSIONS_FILE)
    }

    pub fn save_sessions(&self, sessions: &Sessions) -> Result<()> {
        self.write(SESSIONS_FILE, sessions)
    }

    pub fn uploads(&self) -> Result<Uploads> {
        self.read(UPLOADS_FILE)
    }

    pub fn save_uploads(&self, uploads: &Uploads) -> Result<()> {
        self.write(UPLOADS_FILE, uploads)
    }

    fn read<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::local(format!("{} is not valid: {e}", path.display()))
                    .with_hint("fix or remove the file")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(CliError::local(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let fail = |what: &str, e: std::io::Error| {
            CliError::local(format!("cannot {what} in {}: {e}", self.dir.display()))
        };
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(value).expect("config serialises");
        let written = write_private(&self.dir, &tmp, &body).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(fail(&format!("write {name}"), e));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Writes `body` to `path` in `dir` (created 0700), readable by its owner alone, synced.
pub fn write_private(dir: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let mut file = private_file(path)?;
    file.write_all(body)?;
    file.sync_all()
}

/// A new file only its owner can read, whatever the umask.
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // `mode` applies only when the file is created; a leftover file keeps its own.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}
