//! Secrets that rotate: the Spin variable `<name>` and, during a rotation, `<name>_previous`
//! (absent or empty = no rotation under way). Every key the components use is loaded here, so
//! "current first, then previous" is read one way everywhere.

use streamgate_core::api_error::ApiError;

use crate::config;

/// A secret and the one before it.
pub struct Rotating {
    pub current: String,
    pub previous: Option<String>,
}

impl Rotating {
    /// Reads `<name>` (503 `server_misconfigured` when unavailable) and `<name>_previous`.
    pub fn load(name: &str) -> Result<Self, ApiError> {
        Ok(Self {
            current: config::get(name)?,
            previous: config::optional(&format!("{name}_previous")),
        })
    }

    /// Current first: a token is checked against the key most likely to have signed it.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.previous.as_deref())
    }
}
