//! Spin variables, read once per request into a component's settings
//! (`streamgate_core::settings`, where the names and the parsing live). A missing or malformed
//! value is the operator's problem: 503 `server_misconfigured` naming the variable, never a 500
//! or a panic.

use spin_sdk::variables;
use streamgate_core::api_error::ApiError;
use streamgate_core::settings::{self, Variables};

/// The component's Spin variables.
pub struct Spin;

impl Variables for Spin {
    fn get(&self, name: &str) -> Result<String, String> {
        variables::get(name).map_err(|e| e.to_string())
    }
}

/// A variable that must be there, for what reads one outside a component's settings (the
/// rotating secrets).
pub fn get(name: &str) -> Result<String, ApiError> {
    settings::required(&Spin, name)
}

/// An optional variable: absent or empty is `None`.
pub fn optional(name: &str) -> Option<String> {
    settings::optional(&Spin, name)
}
