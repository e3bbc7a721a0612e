//! The StreamGate HTTP API (docs/api.md), blocking.

use std::time::Duration;

use serde_json::Value;

use crate::error::{CliError, Result};

pub struct Api {
    pub agent: ureq::Agent,
    pub base: String,
    pub token: Option<String>,
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .timeout_write(Duration::from_secs(60))
        .user_agent(concat!("streamgate-cli/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Seconds from a `Retry-After` header (delta-seconds form; the API never sends a date).
pub fn retry_after(resp: &ureq::Response) -> Option<u64> {
    resp.header("retry-after")?.trim().parse().ok()
}

/// Turns a failed ureq call into the CLI's error: the API's `{error, code}` or a network error.
pub fn call_error(what: &str, e: ureq::Error) -> CliError {
    match e {
        ureq::Error::Status(status, resp) => {
            let retry = retry_after(&resp);
            let body = resp.into_string().unwrap_or_default();
            CliError::from_api(status, &body, retry)
        }
        ureq::Error::Transport(t) => CliError::network(what, t),
    }
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            agent: agent(),
            base: base.to_string(),
            token,
        }
    }

    /// One call; `Ok(None)` for an answer without a body (204).
    pub fn call(&self, method: &str, route: &str, body: Option<&Value>) -> Result<Option<Value>> {
        let url = format!("{}{route}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(token) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        let what = format!("{method} {url}");
        let resp = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None if method == "POST" || method == "PUT" => req.send_bytes(&[]),
            None => req.call(),
        }
        .map_err(|e| call_error(&what, e))?;
        let status = resp.status();
        let text = resp
            .into_string()
            .map_err(|e| CliError::network(&what, e))?;
        if status == 204 || text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| CliError::from_api(status, &text, None))
    }

    pub fn get(&self, route: &str) -> Result<Value> {
        self.call("GET", route, None)?
            .ok_or_else(|| CliError::from_api(204, "", None))
    }

    pub fn post(&self, route: &str, body: &Value) -> Result<Value> {
        self.call("POST", route, Some(body))?
            .ok_or_else(|| CliError::from_api(204, "", None))
    }
}
