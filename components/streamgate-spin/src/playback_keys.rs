//! The signed-URL keys: `playback_secret`, and `playback_secret_previous` during a rotation.

use streamgate_core::api_error::ApiError;

use crate::secrets::Rotating;

pub struct PlaybackKeys {
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

impl PlaybackKeys {
    pub fn load() -> Result<Self, ApiError> {
        let secrets = Rotating::load("playback_secret")?;
        Ok(Self {
            current: secrets.current.into_bytes(),
            previous: secrets.previous.map(String::into_bytes),
        })
    }

    /// Current first: a token is checked against the key most likely to have signed it.
    pub fn all(&self) -> Vec<&[u8]> {
        std::iter::once(self.current.as_slice())
            .chain(self.previous.as_deref())
            .collect()
    }
}
