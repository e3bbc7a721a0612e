//! Secrets that rotate: the Spin variable `<name>` and, during a rotation, `<name>_previous`
//! (absent or empty = no rotation under way). Every key the components use is loaded here, so
//! "current first, then previous" is read one way everywhere, and both must have
//! [`MIN_SECRET_BYTES`] (else 503 `server_misconfigured` naming the variable).

use streamgate_core::api_error::ApiError;
use streamgate_core::keys::check_secret;
#[cfg(doc)]
use streamgate_core::keys::MIN_SECRET_BYTES;

use crate::config;

/// A secret and the one before it.
pub struct Rotating {
    pub current: String,
    pub previous: Option<String>,
}

impl Rotating {
    /// Reads `<name>` and `<name>_previous`; 503 `server_misconfigured` when the current one is
    /// unavailable or either is shorter than the minimum.
    pub fn load(name: &str) -> Result<Self, ApiError> {
        let current = config::get(name)?;
        check_secret(name, &current)?;
        let previous_name = format!("{name}_previous");
        let previous = config::optional(&previous_name);
        if let Some(previous) = &previous {
            check_secret(&previous_name, previous)?;
        }
        Ok(Self { current, previous })
    }

    /// Current first: a token is checked against the key most likely to have signed it.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.previous.as_deref())
    }
}
