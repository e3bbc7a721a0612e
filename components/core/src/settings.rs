//! Each component's configuration as one typed value, read from the deployment's variables (Spin
//! variables on a host, a map in tests) once per request. The variable names and what a valid
//! value is live here and nowhere else. A missing or malformed value is the operator's problem:
//! 503 `server_misconfigured` naming the variable, never a 500 or a panic.

use std::collections::BTreeMap;

use crate::api_error::ApiError;
use crate::config::{chain_rpc_urls, rate_limit, session_ttl_secs};
use crate::edge_token::ViewingPolicy;
use crate::gate::CacheTtl;
use crate::rate_limit::Limit;

/// Where the values come from.
pub trait Variables {
    /// The value of `name`, or the host's reason why there is none.
    fn get(&self, name: &str) -> Result<String, String>;
}

/// For tests and tools: the map is the deployment; a name it lacks is unavailable.
impl Variables for BTreeMap<&str, &str> {
    fn get(&self, name: &str) -> Result<String, String> {
        BTreeMap::get(self, name)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("no variable `{name}`"))
    }
}

fn misconfigured(message: String) -> ApiError {
    ApiError::new(503, "server_misconfigured", message)
}

/// A variable that must be there (it may be empty).
pub fn required(vars: &impl Variables, name: &str) -> Result<String, ApiError> {
    vars.get(name).map_err(|e| {
        misconfigured(format!(
            "configuration variable `{name}` is unavailable: {e}"
        ))
    })
}

/// An optional variable: absent or empty is `None`.
pub fn optional(vars: &impl Variables, name: &str) -> Option<String> {
    vars.get(name).ok().filter(|v| !v.is_empty())
}

/// A duration: a whole number of seconds, zero or more.
pub fn seconds(vars: &impl Variables, name: &str) -> Result<i64, ApiError> {
    let value = required(vars, name)?;
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| {
            misconfigured(format!(
                "`{name}` must be a number of seconds, got `{value}`"
            ))
        })
}

fn chains(vars: &impl Variables) -> Result<BTreeMap<u64, String>, ApiError> {
    Ok(chain_rpc_urls(&required(vars, "chain_rpc_urls")?)?)
}

fn limit(vars: &impl Variables, name: &'static str) -> Result<Limit, ApiError> {
    Ok(rate_limit(name, &required(vars, name)?)?)
}

/// What the auth component's rate-limited routes (nonce and verify) read first: whose limit a
/// request counts against and the limits themselves (`<requests>/<seconds>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimits {
    /// `trusted_client_ip_header`, lower-cased; `None` when blank (the peer address counts).
    pub trusted_client_ip_header: Option<String>,
    /// `rate_limit_nonce_per_ip`
    pub nonce_per_ip: Limit,
    /// `rate_limit_verify_per_ip`: failed verifies per client.
    pub verify_per_ip: Limit,
    /// `rate_limit_verify_per_address`: sign-ins with a valid signature per address.
    pub verify_per_address: Limit,
}

impl AuthLimits {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        let header = required(vars, crate::client_addr::TRUSTED_HEADER_VARIABLE)?;
        Ok(Self {
            trusted_client_ip_header: crate::client_addr::trusted_header(&header)?,
            nonce_per_ip: limit(vars, "rate_limit_nonce_per_ip")?,
            verify_per_ip: limit(vars, "rate_limit_verify_per_ip")?,
            verify_per_address: limit(vars, "rate_limit_verify_per_address")?,
        })
    }
}

/// What checking a sign-in reads: the chains accepted, the SIWE domain and URI, and how long a
/// session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    /// `chain_rpc_urls`
    pub chain_rpc_urls: BTreeMap<u64, String>,
    /// `siwe_domain`
    pub siwe_domain: String,
    /// `siwe_uri`
    pub siwe_uri: String,
    /// `session_ttl_secs`, at least 1.
    pub session_ttl_secs: i64,
}

impl SignIn {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        Ok(Self {
            chain_rpc_urls: chains(vars)?,
            siwe_domain: required(vars, "siwe_domain")?,
            siwe_uri: required(vars, "siwe_uri")?,
            session_ttl_secs: session_ttl_secs(&required(vars, "session_ttl_secs")?)?,
        })
    }
}

/// What the metadata component's video routes that write (create, change the gate) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Videos {
    /// `chain_rpc_urls`: the chains a gate rule may name.
    pub chain_rpc_urls: BTreeMap<u64, String>,
    /// `media_base_url`: where upload URLs point.
    pub media_base_url: String,
    /// `max_pending_uploads_per_wallet`, at least 1.
    pub max_pending_uploads_per_wallet: i64,
}

impl Videos {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        const PENDING: &str = "max_pending_uploads_per_wallet";
        let chain_rpc_urls = chains(vars)?;
        let media_base_url = required(vars, "media_base_url")?;
        let value = required(vars, PENDING)?;
        let max_pending_uploads_per_wallet = value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
            misconfigured(format!(
                "`{PENDING}` must be a whole number of at least 1, got `{value}`"
            ))
        })?;
        Ok(Self {
            chain_rpc_urls,
            media_base_url,
            max_pending_uploads_per_wallet,
        })
    }

    /// The media origin's base URL for public poster URLs, on the routes that only read:
    /// unavailable is empty (no poster URLs), never an error.
    pub fn public_media_base_url(vars: &impl Variables) -> String {
        vars.get("media_base_url").unwrap_or_default()
    }
}

/// How the metadata component hands a job to the job stream (docs/pipeline.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTransport {
    /// `job_transport = "redis"` (or unset/empty): `XADD` to `redis_address`.
    Redis { address: String },
    /// `job_transport = "http"`: a signed `POST` to the media origin at `job_origin_url`.
    Http { origin_url: String },
}

impl JobTransport {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        match optional(vars, "job_transport")
            .as_deref()
            .unwrap_or("redis")
        {
            "redis" => Ok(JobTransport::Redis {
                address: required(vars, "redis_address")?,
            }),
            "http" => Ok(JobTransport::Http {
                origin_url: required(vars, "job_origin_url")?,
            }),
            other => Err(misconfigured(format!(
                "`job_transport` must be `redis` or `http`, got `{other}`"
            ))),
        }
    }
}

/// What the playback component reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playback {
    /// `gate_cache_positive_secs` and `gate_cache_negative_secs`.
    pub gate_cache: CacheTtl,
    /// `playback_token_secs`: the signed URLs' lifetime.
    pub playback_token_secs: i64,
    /// `stream_base_url`: where the playlists are served.
    pub stream_base_url: String,
}

impl Playback {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        Ok(Self {
            gate_cache: CacheTtl {
                positive_secs: seconds(vars, "gate_cache_positive_secs")?,
                negative_secs: seconds(vars, "gate_cache_negative_secs")?,
            },
            playback_token_secs: seconds(vars, "playback_token_secs")?,
            stream_base_url: required(vars, "stream_base_url")?,
        })
    }

    /// `chain_rpc_urls`, read only when a gate has to be asked about on chain.
    pub fn chain_rpc_urls(vars: &impl Variables) -> Result<BTreeMap<u64, String>, ApiError> {
        chains(vars)
    }
}

/// What the playlists component reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlists {
    /// `playback_session_max_secs` and `playback_pause_allowance_secs`.
    pub viewing: ViewingPolicy,
    /// `media_base_url`: where segments are served.
    pub media_base_url: String,
    /// `playlist_templates`: `on` (unset or empty too) serves the playlists kept with the
    /// tracks; `off` renders every playlist per request.
    pub templates: bool,
}

impl Playlists {
    pub fn load(vars: &impl Variables) -> Result<Self, ApiError> {
        Ok(Self {
            viewing: ViewingPolicy {
                session_max_secs: seconds(vars, "playback_session_max_secs")?,
                pause_allowance_secs: seconds(vars, "playback_pause_allowance_secs")?,
            },
            media_base_url: required(vars, "media_base_url")?,
            templates: match optional(vars, "playlist_templates").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(misconfigured(format!(
                        "`playlist_templates` must be `on` or `off`, got `{other}`"
                    )))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spin.toml's defaults for every variable these settings read.
    fn defaults() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("siwe_domain", "127.0.0.1:3000"),
            ("siwe_uri", "http://127.0.0.1:3000"),
            ("chain_rpc_urls", "31337=http://127.0.0.1:8545"),
            ("media_base_url", "http://127.0.0.1:3001"),
            ("redis_address", "redis://127.0.0.1:6390"),
            ("job_transport", "redis"),
            ("job_origin_url", "http://127.0.0.1:3001"),
            ("session_ttl_secs", "86400"),
            ("playback_token_secs", "300"),
            ("playback_session_max_secs", "14400"),
            ("playback_pause_allowance_secs", "1800"),
            ("stream_base_url", "http://127.0.0.1:3000"),
            ("gate_cache_positive_secs", "30"),
            ("gate_cache_negative_secs", "5"),
            ("rate_limit_nonce_per_ip", "60/60"),
            ("rate_limit_verify_per_ip", "30/60"),
            ("rate_limit_verify_per_address", "10/60"),
            ("trusted_client_ip_header", ""),
            ("max_pending_uploads_per_wallet", "5"),
        ])
    }

    fn with(name: &'static str, value: &'static str) -> BTreeMap<&'static str, &'static str> {
        let mut vars = defaults();
        vars.insert(name, value);
        vars
    }

    fn without(name: &str) -> BTreeMap<&'static str, &'static str> {
        let mut vars = defaults();
        vars.remove(name);
        vars
    }

    /// 503 `server_misconfigured`, and the message names the variable.
    fn assert_misconfigured<T: std::fmt::Debug>(result: Result<T, ApiError>, name: &str) {
        let e = result.unwrap_err();
        assert_eq!((e.status, e.code), (503, "server_misconfigured"));
        assert!(e.error.contains(&format!("`{name}`")), "{}", e.error);
    }

    #[test]
    fn spin_toml_defaults_parse() {
        let vars = defaults();
        let limits = AuthLimits::load(&vars).unwrap();
        assert_eq!(limits.trusted_client_ip_header, None);
        assert_eq!(
            limits.verify_per_address,
            Limit {
                max: 10,
                window_secs: 60
            }
        );
        let sign_in = SignIn::load(&vars).unwrap();
        assert_eq!(sign_in.chain_rpc_urls[&31337], "http://127.0.0.1:8545");
        assert_eq!(sign_in.session_ttl_secs, 86_400);
        let videos = Videos::load(&vars).unwrap();
        assert_eq!(videos.max_pending_uploads_per_wallet, 5);
        assert_eq!(videos.media_base_url, "http://127.0.0.1:3001");
        assert_eq!(
            JobTransport::load(&vars).unwrap(),
            JobTransport::Redis {
                address: "redis://127.0.0.1:6390".into()
            }
        );
        let playback = Playback::load(&vars).unwrap();
        assert_eq!(
            playback.gate_cache,
            CacheTtl {
                positive_secs: 30,
                negative_secs: 5
            }
        );
        assert_eq!(playback.playback_token_secs, 300);
        let playlists = Playlists::load(&vars).unwrap();
        assert_eq!(playlists.viewing.session_max_secs, 14_400);
        assert_eq!(playlists.viewing.pause_allowance_secs, 1_800);
        assert!(playlists.templates);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = Playlists::load(&without("media_base_url")).unwrap_err();
        assert_eq!(
            e.error,
            "configuration variable `media_base_url` is unavailable: no variable `media_base_url`"
        );
        assert_misconfigured(SignIn::load(&without("siwe_uri")), "siwe_uri");
        assert_misconfigured(
            AuthLimits::load(&without("trusted_client_ip_header")),
            "trusted_client_ip_header",
        );
        assert_misconfigured(
            Playback::load(&without("stream_base_url")),
            "stream_base_url",
        );
        assert_misconfigured(
            Videos::load(&without("max_pending_uploads_per_wallet")),
            "max_pending_uploads_per_wallet",
        );
        assert_misconfigured(
            JobTransport::load(&without("redis_address")),
            "redis_address",
        );
    }

    #[test]
    fn malformed_values_are_named_with_the_value() {
        let e =
            Playlists::load(&with("playback_pause_allowance_secs", "half an hour")).unwrap_err();
        assert_eq!(
            e.error,
            "`playback_pause_allowance_secs` must be a number of seconds, got `half an hour`"
        );
        assert_misconfigured(
            Playback::load(&with("gate_cache_negative_secs", "-1")),
            "gate_cache_negative_secs",
        );
        let e = Videos::load(&with("max_pending_uploads_per_wallet", "0")).unwrap_err();
        assert_eq!(
            e.error,
            "`max_pending_uploads_per_wallet` must be a whole number of at least 1, got `0`"
        );
        let e = Playlists::load(&with("playlist_templates", "sometimes")).unwrap_err();
        assert_eq!(
            e.error,
            "`playlist_templates` must be `on` or `off`, got `sometimes`"
        );
        let e = JobTransport::load(&with("job_transport", "carrier-pigeon")).unwrap_err();
        assert_eq!(
            e.error,
            "`job_transport` must be `redis` or `http`, got `carrier-pigeon`"
        );
        assert_misconfigured(
            SignIn::load(&with("session_ttl_secs", "0")),
            "session_ttl_secs",
        );
        assert_misconfigured(
            SignIn::load(&with("chain_rpc_urls", "x=http://a")),
            "chain_rpc_urls",
        );
        assert_misconfigured(
            AuthLimits::load(&with("rate_limit_verify_per_ip", "30")),
            "rate_limit_verify_per_ip",
        );
        assert_misconfigured(
            AuthLimits::load(&with("trusted_client_ip_header", "X Forwarded")),
            "trusted_client_ip_header",
        );
    }

    #[test]
    fn lenient_values() {
        // Seconds may be zero and padded; a trusted header is lower-cased.
        let playlists = Playlists::load(&with("playback_pause_allowance_secs", " 0 ")).unwrap();
        assert_eq!(playlists.viewing.pause_allowance_secs, 0);
        let limits =
            AuthLimits::load(&with("trusted_client_ip_header", "X-Forwarded-For")).unwrap();
        assert_eq!(
            limits.trusted_client_ip_header.as_deref(),
            Some("x-forwarded-for")
        );
        // No transport named, or an empty one, is Redis; http needs its origin, not Redis.
        for vars in [without("job_transport"), with("job_transport", "")] {
            assert!(matches!(
                JobTransport::load(&vars),
                Ok(JobTransport::Redis { .. })
            ));
        }
        let mut http = with("job_transport", "http");
        http.remove("redis_address");
        assert_eq!(
            JobTransport::load(&http).unwrap(),
            JobTransport::Http {
                origin_url: "http://127.0.0.1:3001".into()
            }
        );
        http.remove("job_origin_url");
        assert_misconfigured(JobTransport::load(&http), "job_origin_url");
        let off = Playlists::load(&with("playlist_templates", "off")).unwrap();
        assert!(!off.templates);
        let empty = Playlists::load(&with("playlist_templates", "")).unwrap();
        assert!(empty.templates);
        // The read-only routes show no poster URLs rather than fail.
        assert_eq!(
            Videos::public_media_base_url(&without("media_base_url")),
            ""
        );
        assert_misconfigured(Videos::load(&without("media_base_url")), "media_base_url");
    }
}
