//! Parsing the deployment's configuration values (Spin variables) into typed settings, with an
//! error that names the variable and says what a valid value looks like.

use std::collections::BTreeMap;

use crate::rate_limit::Limit;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable `{variable}`: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl From<ConfigError> for crate::api_error::ApiError {
    fn from(e: ConfigError) -> Self {
        // The operator's mistake, not the caller's: "unavailable", never a 500.
        crate::api_error::ApiError::new(503, "server_misconfigured", e.to_string())
    }
}

/// `chain_rpc_urls`: `chain_id=url` pairs separated by commas, e.g.
/// `31337=http://127.0.0.1:8545,1=https://rpc.example`.
pub fn chain_rpc_urls(value: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let err = |problem: String| ConfigError {
        variable: "chain_rpc_urls",
        problem,
    };
    let mut urls = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, url) = pair
            .split_once('=')
            .ok_or_else(|| err(format!("`{pair}` is not `chain_id=url`")))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| err(format!("`{id}` is not a decimal chain id")))?;
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(format!("the URL for chain {id} must be http(s)://…")));
        }
        if urls.insert(id, url.to_string()).is_some() {
            return Err(err(format!("chain {id} is listed twice")));
        }
    }
    if urls.is_empty() {
        return Err(err("no chain is configured".into()));
    }
    Ok(urls)
}

/// A rate limit written `<requests>/<seconds>`, e.g. `30/60`.
pub fn rate_limit(variable: &'static str, value: &str) -> Result<Limit, ConfigError> {
    let parsed = value.split_once('/').and_then(|(n, s)| {
        Some(Limit {
            max: n.trim().parse().ok()?,
            window_secs: s.trim().parse().ok().filter(|s| *s > 0)?,
        })
    });
    parsed.ok_or_else(|| ConfigError {
        variable,
        problem: format!("`{value}` is not `<requests>/<seconds>` (e.g. 30/60)"),
    })
}

/// `session_ttl_secs`: how long a session token lives, whole seconds, at least 1.
pub fn session_ttl_secs(value: &str) -> Result<i64, ConfigError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| ConfigError {
            variable: "session_ttl_secs",
            problem: format!("`{value}` is not a number of seconds of at least 1 (e.g. 86400)"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ttls_parse() {
        assert_eq!(session_ttl_secs("86400"), Ok(86_400));
        assert_eq!(session_ttl_secs(" 3 "), Ok(3));
        for bad in ["0", "-1", "", "1h", "1.5"] {
            let e = session_ttl_secs(bad).unwrap_err();
            assert_eq!(e.variable, "session_ttl_secs", "{bad}");
        }
    }

    #[test]
    fn chain_urls_parse_and_reject_nonsense() {
        let urls =
            chain_rpc_urls(" 31337=http://127.0.0.1:8545 , 1=https://rpc.example/v1").unwrap();
        assert_eq!(urls[&31337], "http://127.0.0.1:8545");
        assert_eq!(urls[&1], "https://rpc.example/v1");
        for bad in [
            "",
            "31337",
            "x=http://a",
            "1=ftp://a",
            "1=http://a,1=http://b",
        ] {
            let e = chain_rpc_urls(bad).unwrap_err();
            assert_eq!(e.variable, "chain_rpc_urls", "{bad}");
        }
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            rate_limit("v", "30/60").unwrap(),
            Limit {
                max: 30,
                window_secs: 60
            }
        );
        for bad in ["30", "a/60", "30/0", "30/-1", ""] {
            assert!(rate_limit("v", bad).is_err(), "{bad}");
        }
    }
}
