//! What went wrong, as a sentence for people, a code and an exit status for scripts.

use std::fmt;

use serde_json::{json, Value};

/// Exit statuses scripts can branch on (docs/cli.md, "Exit codes"). Never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A local failure: a file that cannot be read, a config dir that cannot be written.
    Failure = 1,
    /// The command line is wrong (clap uses 2 as well).
    Usage = 2,
    /// No session for this API, or the API refused it (expired, revoked, forged).
    NotSignedIn = 3,
    NotFound = 4,
    /// Not the owner, not a holder of the gate's token, a session of the wrong chain.
    Forbidden = 5,
    /// Any other refusal or failure the API answered (validation, rate limits, 5xx).
    Api = 6,
    /// The API or the media origin could not be reached, or the connection broke.
    Network = 7,
    /// The wallet could not be opened: wrong keystore password, unreadable keystore, bad key.
    Wallet = 8,
    /// The upload arrived but the video failed to transcode.
    TranscodeFailed = 9,
}

#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub code: String,
    pub message: String,
    /// The HTTP status, for errors the API answered.
    pub status: Option<u16>,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// More fields for the `--json` error document (e.g. the video id of a failed transcode).
    pub extra: Option<Value>,
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn new(exit: Exit, code: &str, message: impl Into<String>) -> Self {
        Self {
            exit,
            code: code.to_string(),
            message: message.into(),
            status: None,
            hint: None,
            extra: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, "usage", message)
    }

    pub fn local(message: impl Into<String>) -> Self {
        Self::new(Exit::Failure, "local_error", message)
    }

    pub fn not_signed_in(api: &str) -> Self {
        Self::new(
            Exit::NotSignedIn,
            "not_signed_in",
            format!("not signed in to {api}"),
        )
        .with_hint(format!("run `streamgate login --api {api}` first"))
    }

    pub fn network(what: &str, why: impl fmt::Display) -> Self {
        Self::new(Exit::Network, "network_error", format!("{what}: {why}"))
            .with_hint("check the URL and your connection; the command can be run again")
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// An error the API (or the media origin) answered: its `{error, code}` body, or whatever
    /// it sent instead. `retry_after` is the answer's `Retry-After`, in seconds.
    pub fn from_api(status: u16, body: &str, retry_after: Option<u64>) -> Self {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (code, sentence) = match (field("code"), field("error")) {
            (Some(code), Some(sentence)) => (code, sentence),
            (Some(code), None) => (code.clone(), code),
            _ => (
                format!("http_{status}"),
                format!(
                    "the server answered HTTP {status} without a StreamGate error body{}",
                    if body.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", snippet(body))
                    }
                ),
            ),
        };
        let exit = exit_for(status, &code);
        let mut hint = hint_for(&code).map(str::to_string);
        if let Some(secs) = retry_after {
            let wait = format!("the server asks to retry in {secs} s");
            hint = Some(match hint {
                Some(h) => format!("{h}; {wait}"),
                None => wait,
            });
        }
        Self {
            exit,
            code,
            message: sentence,
            status: Some(status),
            hint,
            extra: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut doc = json!({
            "error": self.message,
            "code": self.code,
            "exit_code": self.exit as i32,
        });
        if let Some(status) = self.status {
            doc["status"] = json!(status);
        }
        if let Some(hint) = &self.hint {
            doc["hint"] = json!(hint);
        }
        if let Some(Value::Object(extra)) = &self.extra {
            for (k, v) in extra {
                doc[k] = v.clone();
            }
        }
        doc
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        match self.status {
            Some(status) => write!(f, " ({}, HTTP {status})", self.code)?,
            None => write!(f, " ({})", self.code)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  {hint}")?;
        }
        Ok(())
    }
}

fn snippet(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        one_line.chars().take(119).chain(['…']).collect()
    } else {
        one_line
    }
}

/// The session codes (docs/auth.md): the stored session is of no use any more.
const SESSION_CODES: &[&str] = &[
    "missing_token",
    "invalid_token",
    "unknown_key",
    "token_expired",
    "token_not_yet_valid",
    "token_revoked",
];

fn exit_for(status: u16, code: &str) -> Exit {
    match status {
        401 if SESSION_CODES.contains(&code) => Exit::NotSignedIn,
        404 => Exit::NotFound,
        403 => Exit::Forbidden,
        _ => Exit::Api,
    }
}

/// What to do about each code the API documents (docs/api.md, auth.md, pipeline.md,
/// playback.md, native-transcoder.md). The server's own sentence says what happened.
pub fn hint_for(code: &str) -> Option<&'static str> {
    Some(match code {
        "missing_token" | "invalid_token" | "unknown_key" | "token_not_yet_valid" => {
            "the saved session is not accepted: run `streamgate login` again"
        }
        "token_expired" => "the session has expired: run `streamgate login` again",
        "token_revoked" => "the session was signed out: run `streamgate login` again",
        "domain_mismatch" | "uri_mismatch" => {
            "this deployment signs in under another domain or URI: pass --siwe-domain / --siwe-uri as its operator documents them"
        }
        "chain_not_supported" => {
            "this deployment does not read that chain: use one of its chains (for login, --chain-id)"
        }
        "expired" | "not_yet_valid" | "issued_in_future" => {
            "check this machine's clock (the sign-in message carries the time), then try again"
        }
        "nonce_unknown" | "nonce_used" | "nonce_expired" => "run `streamgate login` again",
        "bad_signature" | "invalid_signature" | "unsupported_signature" => {
            "the wallet's signature was not accepted for this address"
        }
        "signature_check_unavailable" | "gate_check_unavailable" => {
            "the chain did not answer; nothing was granted. Try again later"
        }
        "session_chain_mismatch" => {
            "a contract wallet's session speaks for one chain: sign in with --chain-id of the gate's chain"
        }
        "not_token_holder" => "this wallet does not hold what the video's gate asks for",
        "not_owner" => "only the video's owner may do this",
        "not_found" => "no such video, or not one you may see (`streamgate ls` lists yours)",
        "not_ready" => "the video is not ready yet: `streamgate show ID` tells its status",
        "invalid_gate" => {
            "a gate rule is chain:contract:standard[:token_id][:min_balance], e.g. 1:0xAbc…:erc721"
        }
        "too_many_pending_uploads" => {
            "finish or delete one of your videos awaiting upload (`streamgate ls --status awaiting_upload`)"
        }
        "rate_limited" => "too many requests: wait and try again",
        "upload_quota_exceeded" => "this wallet's daily upload allowance is spent: try again tomorrow (UTC)",
        "insufficient_storage" => "the media store is full: try again later",
        "video_deleted" => "the video was deleted: upload again to make a new one",
        "upload_interrupted" => {
            "another client (another run of this command, or the web studio) took this upload over: let it finish, or run this command again to go on from where the origin got to"
        }
        "payload_too_large" => "the request or file is larger than this deployment accepts",
        "store_unavailable" | "queue_unavailable" | "server_misconfigured" | "overloaded"
        | "internal_error" | "timeout" => "the service has a problem: try again later or tell its operator",
        _ => return None,
    })
}
