//! `streamgate`: sign in with a wallet, upload and manage videos, get playback URLs, from a
//! terminal or a script (docs/cli.md).

mod api;
mod config;
mod error;
mod upload;
mod wallet;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use alloy_primitives::Address;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use streamgate_core::now;
use streamgate_core::siwe::{rfc3339_utc, SiweMessage, Timestamp};
use streamgate_core::video::{GateRule, TokenStandard};

use api::Api;
use config::{Config, PendingUpload, Session};
use error::{CliError, Exit, Result};
use wallet::Wallet;

const DEFAULT_API: &str = "http://127.0.0.1:3000";

#[derive(Parser)]
#[command(
    name = "streamgate",
    version,
    about = "The StreamGate command-line client"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// The API's base URL [default: $STREAMGATE_API, else the API of the last login, else
    /// http://127.0.0.1:3000]
    #[arg(long, global = true, value_name = "URL")]
    api: Option<String>,
    /// Print one JSON document on stdout (errors too), for scripts
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with a wallet (Sign-In with Ethereum); the session is kept per API URL
    Login(LoginArgs),
    /// Sign out: the session is revoked on the server and forgotten here
    Logout,
    /// Show the signed-in address
    Whoami,
    /// Create a video and upload FILE (resumes an interrupted upload of the same file)
    Upload(UploadArgs),
    /// List videos: yours when signed in, else the public ones
    Ls(LsArgs),
    /// Show one video
    Show {
        /// The video id
        id: String,
    },
    /// Change who may watch a video
    Gate {
        #[command(subcommand)]
        command: GateCommand,
    },
    /// Delete a video
    Rm {
        /// The video id
        id: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Print signed HLS and DASH URLs (checks the gate)
    Play(PlayArgs),
}

#[derive(Args)]
struct LoginArgs {
    /// A Web3 Secret Storage keystore (geth, foundry, ethers, eth-account); its password comes
    /// from $STREAMGATE_KEYSTORE_PASSWORD or a prompt. Without it: $STREAMGATE_PRIVATE_KEY
    #[arg(long, env = "STREAMGATE_KEYSTORE", value_name = "FILE")]
    keystore: Option<PathBuf>,
    /// The chain id the sign-in message names
    #[arg(long, env = "STREAMGATE_CHAIN_ID", default_value_t = 31337)]
    chain_id: u64,
    /// The SIWE domain the deployment expects [default: the API URL's host:port]
    #[arg(long, value_name = "HOST")]
    siwe_domain: Option<String>,
    /// The SIWE URI the deployment expects [default: the API URL's origin]
    #[arg(long, value_name = "URI")]
    siwe_uri: Option<String>,
}

#[derive(Args)]
struct UploadArgs {
    /// The video file (any container and codecs ffmpeg reads)
    file: PathBuf,
    /// The video's title
    #[arg(long)]
    title: String,
    /// A description shown with it
    #[arg(long)]
    description: Option<String>,
    /// Who may watch: chain:contract:standard[:token_id][:min_balance]; repeat for "any of"
    #[arg(long = "gate", value_name = "RULE")]
    gates: Vec<String>,
    /// Return once the upload is complete, without following the transcode
    #[arg(long)]
    no_wait: bool,
    /// Upload at most this many bytes per second (500k, 2M, …)
    #[arg(long, value_name = "RATE", value_parser = upload::parse_rate)]
    limit_rate: Option<u64>,
}

#[derive(Args)]
struct LsArgs {
    /// List the public (ready) videos even when signed in
    #[arg(long)]
    public: bool,
    /// Only videos in this status (awaiting_upload, queued, transcoding, ready, failed)
    #[arg(long)]
    status: Option<String>,
    /// At most this many videos
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Subcommand)]
enum GateCommand {
    /// Replace the video's gate: each RULE is chain:contract:standard[:token_id][:min_balance]
    Set {
        /// The video id
        id: String,
        /// The new rules; a viewer who satisfies any one may watch
        rules: Vec<String>,
        /// Remove every rule: anyone may watch
        #[arg(long, conflicts_with = "rules")]
        public: bool,
    },
}

#[derive(Args)]
struct PlayArgs {
    /// The video id
    id: String,
    /// Hand the HLS URL to a player
    #[arg(long)]
    open: bool,
    /// The player command [default: $STREAMGATE_PLAYER, else mpv, ffplay or vlc, whichever is
    /// installed]
    #[arg(long, value_name = "COMMAND")]
    player: Option<String>,
}

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(Exit::Usage as u8)
                } else {
                    ExitCode::SUCCESS
                };
            }
            if json {
                let err = CliError::usage(e.kind().to_string());
                println!("{}", err.to_json());
            }
            let _ = e.print();
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let json = cli.global.json;
    match run(cli) {
        Ok(doc) => {
            if json {
                println!("{doc}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            }
            eprintln!("{e}");
            ExitCode::from(e.exit as u8)
        }
    }
}

/// Runs a command; answers its JSON document (printed with `--json`; human output is printed
/// by the command itself, on stdout, only without `--json`).
fn run(cli: Cli) -> Result<Value> {
    let config = Config::locate()?;
    let mut sessions = config.sessions()?;
    let api_url = normalise_api(
        cli.global
            .api
            .clone()
            .or_else(|| {
                std::env::var("STREAMGATE_API")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .or_else(|| sessions.current_api.clone())
            .unwrap_or_else(|| DEFAULT_API.to_string()),
    )?;
    let out = Out {
        json: cli.global.json,
    };
    let ctx = Ctx {
        config: &config,
        api_url: &api_url,
        out,
    };
    match cli.command {
        Command::Login(args) => login(&ctx, &mut sessions, args),
        Command::Logout => logout(&ctx, &mut sessions),
        Command::Whoami => {
            let api = ctx.signed_in(&sessions)?;
            let me = api.get("/api/v1/auth/me")?;
            out.line(format!(
                "{} on {} (session until {})",
                str_of(&me, "address"),
                api_url,
                str_of(&me, "expires_at")
            ));
            Ok(
                json!({"api": api_url, "address": me["address"], "chain_id": me["chain_id"], "expires_at": me["expires_at"]}),
            )
        }
        Command::Upload(args) => upload_cmd(&ctx, &sessions, args),
        Command::Ls(args) => ls(&ctx, &sessions, args),
        Command::Show { id } => {
            let api = ctx.maybe_signed_in(&sessions)?;
            let video = api.get(&format!("/api/v1/videos/{}", path_segment(&id)?))?;
            out.block(describe(&video, &api_url));
            Ok(video)
        }
        Command::Gate {
            command: GateCommand::Set { id, rules, public },
        } => {
            if rules.is_empty() && !public {
                return Err(CliError::usage(
                    "name at least one RULE, or --public to remove every rule",
                ));
            }
            let gate = rules
                .iter()
                .map(|r| parse_rule(r))
                .collect::<Result<Vec<_>>>()?;
            let api = ctx.signed_in(&sessions)?;
            let video = api
                .call(
                    "PUT",
                    &format!("/api/v1/videos/{}/gate", path_segment(&id)?),
                    Some(&json!({ "gate": gate })),
                )?
                .unwrap_or(Value::Null);
            out.line(format!("gate of {id}: {}", gate_words(&video["gate"])));
            Ok(video)
        }
        Command::Rm { id, yes } => {
            let api = ctx.signed_in(&sessions)?;
            let route = format!("/api/v1/videos/{}", path_segment(&id)?);
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(CliError::usage(
                        "not on a terminal, so nobody can confirm: pass --yes to delete",
                    ));
                }
                let video = api.get(&route)?;
                eprint!(
                    "Delete \"{}\" ({id})? This cannot be undone. [y/N] ",
                    str_of(&video, "title")
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
                    return Err(CliError::new(Exit::Failure, "cancelled", "nothing deleted"));
                }
            }
            api.call("DELETE", &route, None)?;
            out.line(format!("deleted {id}"));
            Ok(json!({"id": id, "deleted": true}))
        }
        Command::Play(args) => play(&ctx, &sessions, args),
    }
}

#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }
    fn block(&self, lines: Vec<String>) {
        for l in lines {
            self.line(l);
        }
    }
    /// Progress notes for people: stderr, never with `--json` on stdout's behalf.
    fn note(&self, text: impl AsRef<str>) {
        eprintln!("{}", text.as_ref());
    }
}

struct Ctx<'a> {
    config: &'a Config,
    api_url: &'a str,
    out: Out,
}

impl Ctx<'_> {
    fn session<'s>(&self, sessions: &'s config::Sessions) -> Option<&'s Session> {
        sessions.sessions.get(self.api_url)
    }

    /// The API with this URL's session; exit 3 without one or with an expired one.
    fn signed_in(&self, sessions: &config::Sessions) -> Result<Api> {
        let s = self
            .session(sessions)
            .ok_or_else(|| CliError::not_signed_in(self.api_url))?;
        let expired = Timestamp::parse(&s.expires_at).is_none_or(|t| t.unix_seconds() <= now());
        if expired {
            return Err(CliError::new(
                Exit::NotSignedIn,
                "token_expired",
                format!(
                    "the session for {} expired at {}",
                    self.api_url, s.expires_at
                ),
            )
            .with_hint(format!(
                "run `streamgate login --api {}` again",
                self.api_url
            )));
        }
        Ok(Api::new(self.api_url, Some(s.token.clone())))
    }

    /// With the session if there is a live one, anonymous otherwise (public reads).
    fn maybe_signed_in(&self, sessions: &config::Sessions) -> Result<Api> {
        match self.signed_in(sessions) {
            Ok(api) => Ok(api),
            Err(e) if e.exit == Exit::NotSignedIn => Ok(Api::new(self.api_url, None)),
            Err(e) => Err(e),
        }
    }
}

fn normalise_api(url: String) -> Result<String> {
    let parsed = url::Url::parse(&url)
        .map_err(|e| CliError::usage(format!("--api {url} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(CliError::usage(format!(
            "--api {url} is not an http(s) URL"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Video ids go into paths: refuse anything that would change the route.
fn path_segment(id: &str) -> Result<&str> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CliError::usage(format!("`{id}` is not a video id")));
    }
    Ok(id)
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---- login / logout ----

fn login(ctx: &Ctx, sessions: &mut config::Sessions, args: LoginArgs) -> Result<Value> {
    let wallet = match &args.keystore {
        Some(path) => Wallet::from_keystore(
            path,
            std::env::var("STREAMGATE_KEYSTORE_PASSWORD").ok(),
            &ctx.config.dir,
        )?,
        None => match std::env::var("STREAMGATE_PRIVATE_KEY") {
            Ok(key) if !key.trim().is_empty() => Wallet::from_hex(&key)?,
            _ => {
                return Err(CliError::usage(
                    "no wallet: pass --keystore FILE, or set STREAMGATE_PRIVATE_KEY",
                ))
            }
        },
    };
    let base = url::Url::parse(ctx.api_url).expect("normalised");
    let domain = args.siwe_domain.clone().unwrap_or_else(|| {
        let host = base.host_str().unwrap_or_default();
        match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    });
    let uri = args
        .siwe_uri
        .clone()
        .unwrap_or_else(|| base.origin().ascii_serialization());
    let api = Api::new(ctx.api_url, None);
    let address = wallet.address.to_checksum(None);
    let nonce = api.post("/api/v1/auth/nonce", &json!({ "address": address }))?;
    let issued = now();
    let stamp = |t: i64| Timestamp::parse(&rfc3339_utc(t)).expect("rfc3339_utc parses");
    let message = SiweMessage {
        scheme: None,
        domain,
        address: wallet.address,
        statement: Some("Sign in to StreamGate.".to_string()),
        uri,
        version: 1,
        chain_id: args.chain_id,
        nonce: str_of(&nonce, "nonce").to_string(),
        issued_at: stamp(issued),
        // The message is only good for the sign-in itself.
        expiration_time: Some(stamp(issued + 300)),
        not_before: None,
        request_id: None,
        resources: None,
    }
    .to_string();
    let signature = wallet.sign_personal(message.as_bytes());
    let answer = api.post(
        "/api/v1/auth/verify",
        &json!({ "message": message, "signature": signature }),
    )?;
    let session = Session {
        token: str_of(&answer, "token").to_string(),
        address: str_of(&answer, "address").to_string(),
        chain_id: args.chain_id,
        expires_at: str_of(&answer, "expires_at").to_string(),
    };
    if session.token.is_empty() {
        return Err(CliError::from_api(200, &answer.to_string(), None));
    }
    sessions
        .sessions
        .insert(ctx.api_url.to_string(), session.clone());
    sessions.current_api = Some(ctx.api_url.to_string());
    ctx.config.save_sessions(sessions)?;
    ctx.out.line(format!(
        "Signed in to {} as {} (session until {})",
        ctx.api_url, session.address, session.expires_at
    ));
    Ok(json!({
        "api": ctx.api_url,
        "address": session.address,
        "chain_id": session.chain_id,
        "expires_at": session.expires_at,
        "session_file": ctx.config.dir.join(config::SESSIONS_FILE),
    }))
}

fn logout(ctx: &Ctx, sessions: &mut config::Sessions) -> Result<Value> {
    let Some(session) = ctx.session(sessions).cloned() else {
        return Err(CliError::not_signed_in(ctx.api_url));
    };
    let api = Api::new(ctx.api_url, Some(session.token.clone()));
    let revoked = match api.call("POST", "/api/v1/auth/logout", None) {
        Ok(_) => true,
        // Already dead on the server: forgetting it here is all that is left to do.
        Err(e) if e.exit == Exit::NotSignedIn => false,
        Err(e) => return Err(e),
    };
    sessions.sessions.remove(ctx.api_url);
    if sessions.current_api.as_deref() == Some(ctx.api_url) {
        sessions.current_api = None;
    }
    ctx.config.save_sessions(sessions)?;
    ctx.out.line(format!(
        "Signed out of {} ({})",
        ctx.api_url,
        if revoked {
            "session revoked"
        } else {
            "the session had already ended"
        }
    ));
    Ok(json!({"api": ctx.api_url, "address": session.address, "revoked": revoked}))
}

// ---- gates ----

/// `chain:contract:standard[:token_id][:min_balance]`; an empty token_id skips it
/// (`1:0x…:erc20::1000`). The API checks the rest (address checksum, chain accepted, …).
fn parse_rule(text: &str) -> Result<GateRule> {
    let bad = |why: &str| {
        CliError::usage(format!(
            "gate rule `{text}`: {why} (expected chain:contract:standard[:token_id][:min_balance])"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    if !(3..=5).contains(&parts.len()) {
        return Err(bad("wrong number of fields"));
    }
    let chain_id = parts[0]
        .parse()
        .map_err(|_| bad("the chain id is not a number"))?;
    let contract = parts[1].to_string();
    if contract.parse::<Address>().is_err() {
        return Err(bad("the contract is not a 0x address"));
    }
    let standard = match parts[2].to_ascii_lowercase().as_str() {
        "erc721" => TokenStandard::Erc721,
        "erc1155" => TokenStandard::Erc1155,
        "erc20" => TokenStandard::Erc20,
        _ => return Err(bad("the standard is erc721, erc1155 or erc20")),
    };
    let opt = |i: usize| {
        parts
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
    };
    Ok(GateRule {
        chain_id,
        contract,
        standard,
        token_id: opt(3),
        min_balance: opt(4),
    })
}

fn gate_words(gate: &Value) -> String {
    let rules = gate.as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        return "public (anyone may watch)".to_string();
    }
    let words: Vec<String> = rules
        .iter()
        .map(|r| {
            let mut s = format!(
                "{} on chain {} {}",
                str_of(r, "standard"),
                r["chain_id"],
                str_of(r, "contract")
            );
            if let Some(t) = r.get("token_id").and_then(Value::as_str) {
                s.push_str(&format!(" token {t}"));
            }
            if let Some(m) = r.get("min_balance").and_then(Value::as_str) {
                s.push_str(&format!(" (at least {m})"));
            }
            s
        })
        .collect();
    format!("holders of any of: {}", words.join("; "))
}

fn describe(v: &Value, api_url: &str) -> Vec<String> {
    let mut lines = vec![
        format!("id:          {}", str_of(v, "id")),
        format!("title:       {}", str_of(v, "title")),
    ];
    if let Some(d) = v
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        lines.push(format!("description: {d}"));
    }
    lines.push(format!("owner:       {}", str_of(v, "owner")));
    let mut status = str_of(v, "status").to_string();
    if let Some(p) = v.get("progress").and_then(Value::as_u64) {
        if status == "transcoding" {
            status.push_str(&format!(" ({p}%)"));
        }
    }
    lines.push(format!("status:      {status}"));
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        lines.push(format!(
            "error:       {e} ({})",
            v.get("error_code").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    lines.push(format!("gate:        {}", gate_words(&v["gate"])));
    if let Some(r) = v
        .get("renditions")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    {
        let names: Vec<&str> = r.iter().map(|x| str_of(x, "name")).collect();
        lines.push(format!("renditions:  {}", names.join(", ")));
    }
    lines.push(format!("created:     {}", str_of(v, "created_at")));
    if str_of(v, "status") == "ready" {
        lines.push(format!(
            "watch:       {}",
            watch_url(api_url, str_of(v, "id"))
        ));
    }
    lines
}

fn watch_url(api_url: &str, id: &str) -> String {
    format!("{api_url}/watch/{id}")
}

// ---- ls / play ----

fn ls(ctx: &Ctx, sessions: &config::Sessions, args: LsArgs) -> Result<Value> {
    let api = if args.public {
        Api::new(ctx.api_url, None)
    } else {
        ctx.maybe_signed_in(sessions)?
    };
    let owner = if args.public {
        None
    } else {
        api.token
            .as_ref()
            .and(ctx.session(sessions))
            .map(|s| s.address.clone())
    };
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < args.limit {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &(args.limit - items.len()).min(100).to_string());
        if let Some(o) = &owner {
            q.append_pair("owner", o);
        }
        if let Some(s) = &args.status {
            q.append_pair("status", s);
        }
        if let Some(c) = &cursor {
            q.append_pair("cursor", c);
        }
        let page = api.get(&format!("/api/v1/videos?{}", q.finish()))?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    items.truncate(args.limit);
    if items.is_empty() {
        ctx.out.line("no videos");
    }
    for v in &items {
        let gate = if v["gate"].as_array().is_some_and(|g| !g.is_empty()) {
            "gated"
        } else {
            "public"
        };
        ctx.out.line(format!(
            "{:<24} {:<15} {:<6} {}",
            str_of(v, "id"),
            str_of(v, "status"),
            gate,
            str_of(v, "title")
        ));
    }
    Ok(json!({"api": ctx.api_url, "owner": owner, "items": items}))
}

fn play(ctx: &Ctx, sessions: &config::Sessions, args: PlayArgs) -> Result<Value> {
    let api = ctx.signed_in(sessions)?;
    let urls = api.post(
        &format!("/api/v1/videos/{}/playback", path_segment(&args.id)?),
        &json!({}),
    )?;
    ctx.out.block(vec![
        format!("HLS:  {}", str_of(&urls, "hls")),
        format!("DASH: {}", str_of(&urls, "dash")),
        format!("start playing before {}", str_of(&urls, "expires_at")),
    ]);
    if args.open {
        let player = args
            .player
            .or_else(|| {
                std::env::var("STREAMGATE_PLAYER")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
            })
            .or_else(|| {
                ["mpv", "ffplay", "vlc"]
                    .iter()
                    .find(|p| on_path(p))
                    .map(|p| p.to_string())
            })
            .ok_or_else(|| {
                CliError::usage(
                    "no player: pass --player COMMAND or set STREAMGATE_PLAYER (mpv, ffplay, vlc…)",
                )
            })?;
        let mut words = player.split_whitespace();
        let program = words
            .next()
            .ok_or_else(|| CliError::usage("the player command is empty"))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(words).arg(str_of(&urls, "hls"));
        if ctx.out.json {
            // stdout carries the one JSON document.
            cmd.stdout(std::process::Stdio::null());
        }
        let status = cmd
            .status()
            .map_err(|e| CliError::local(format!("cannot start the player `{program}`: {e}")))?;
        if !status.success() {
            return Err(CliError::local(format!(
                "the player `{program}` exited with {status}"
            )));
        }
    }
    Ok(urls)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

// ---- upload ----

fn upload_cmd(ctx: &Ctx, sessions: &config::Sessions, args: UploadArgs) -> Result<Value> {
    let gate = args
        .gates
        .iter()
        .map(|r| parse_rule(r))
        .collect::<Result<Vec<_>>>()?;
    let path = std::fs::canonicalize(&args.file)
        .map_err(|e| CliError::local(format!("cannot read {}: {e}", args.file.display())))?;
    let meta = std::fs::metadata(&path)
        .map_err(|e| CliError::local(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!("{} is not a file", path.display())));
    }
    let size = meta.len();
    if size == 0 {
        return Err(CliError::usage(format!("{} is empty", path.display())));
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut file = std::fs::File::open(&path)
        .map_err(|e| CliError::local(format!("cannot open {}: {e}", path.display())))?;
    let api = ctx.signed_in(sessions)?;
    let key = config::upload_key(ctx.api_url, &path, size, mtime);
    let mut uploads = ctx.config.uploads()?;
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    // An earlier run's upload of this very file, if the origin still has it.
    let mut resume: Option<(PendingUpload, u64)> = None;
    if let Some(pending) = uploads.get(&key).cloned() {
        match &pending.upload_url {
            // Sent in full by an earlier run that stopped while following the transcode: follow
            // it again, unless the video has gone meanwhile.
            Some(_) if pending.completed => {
                match api.get(&format!("/api/v1/videos/{}", pending.video_id)) {
                    Ok(_) => resume = Some((pending, size)),
                    Err(e) if e.exit == Exit::NotFound => ctx.out.note(format!(
                        "the video {} of the earlier upload of this file is gone: starting anew",
                        pending.video_id
                    )),
                    Err(e) => return Err(e),
                }
            }
            Some(url) => {
                match upload::head(&api.agent, url)? {
                    upload::Head::Known { offset, length } if length == size => {
                        resume = Some((pending, offset));
                    }
                    upload::Head::Known { .. } => {
                        ctx.out.note("the earlier upload of this file declared another length: starting anew");
                    }
                    upload::Head::Gone(e) => {
                        ctx.out.note(format!(
                            "the earlier upload of this file cannot be resumed ({}): starting anew",
                            e.code
                        ));
                    }
                }
            }
            // Created on the API, but the origin never got the creation: do it now.
            None => {
                let url = upload::create(&api.agent, &pending.endpoint, size, &filename)?;
                let mut p = pending.clone();
                p.upload_url = Some(url);
                uploads.insert(key.clone(), p.clone());
                ctx.config.save_uploads(&uploads)?;
                resume = Some((p, 0));
            }
        }
    }
    let resumed = resume.is_some();
    let (pending, offset) = match resume {
        Some(r) => r,
        None => {
            let mut body = json!({ "title": args.title, "gate": gate });
            if let Some(d) = &args.description {
                body["description"] = json!(d);
            }
            let created = api.post("/api/v1/videos", &body)?;
            let id = str_of(&created, "id").to_string();
            let endpoint = created["upload"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if id.is_empty() || endpoint.is_empty() {
                return Err(CliError::from_api(201, &created.to_string(), None));
            }
            // Remembered before the origin is touched, so a crash from here on resumes.
            let mut pending = PendingUpload {
                api: ctx.api_url.to_string(),
                video_id: id,
                endpoint,
                upload_url: None,
                size,
                completed: false,
            };
            uploads.insert(key.clone(), pending.clone());
            ctx.config.save_uploads(&uploads)?;
            pending.upload_url = Some(upload::create(
                &api.agent,
                &pending.endpoint,
                size,
                &filename,
            )?);
            uploads.insert(key.clone(), pending.clone());
            ctx.config.save_uploads(&uploads)?;
            (pending, 0)
        }
    };
    let id = pending.video_id.clone();
    let upload_url = pending.upload_url.clone().expect("set above");
    if pending.completed {
        ctx.out.note(format!(
            "{} was uploaded to video {id} already: following its transcode",
            path.display()
        ));
    } else if resumed {
        ctx.out.note(format!(
            "resuming the upload of {} to video {id} at byte {offset} of {size}",
            path.display()
        ));
    } else {
        ctx.out
            .note(format!("uploading {} to new video {id}", path.display()));
    }

    if !pending.completed {
        let bar = upload::bytes_bar(size, offset);
        upload::send(
            &api.agent,
            &upload_url,
            &mut file,
            size,
            offset,
            &bar,
            args.limit_rate,
        )?;
        bar.finish();
    }
    // Kept until the transcode is seen to end, so that running the command again after an
    // interruption while following does not upload the file a second time.
    if args.no_wait {
        uploads.remove(&key);
    } else {
        let mut done = pending.clone();
        done.completed = true;
        uploads.insert(key.clone(), done);
    }
    ctx.config.save_uploads(&uploads)?;

    let watch = watch_url(ctx.api_url, &id);
    let mut doc = json!({
        "id": id,
        "size": size,
        "resumed": resumed,
        "resumed_from": offset,
        "watch_url": watch,
    });
    if args.no_wait {
        doc["status"] = json!("uploaded");
        ctx.out.line(format!(
            "uploaded: {id} (transcoding follows; `streamgate show {id}`)"
        ));
        return Ok(doc);
    }

    let video = follow_transcode(&api, &id)?;
    uploads.remove(&key);
    ctx.config.save_uploads(&uploads)?;
    doc["status"] = video["status"].clone();
    doc["renditions"] = json!(video["renditions"]
        .as_array()
        .map(|r| r.iter().map(|x| x["name"].clone()).collect::<Vec<_>>())
        .unwrap_or_default());
    if str_of(&video, "status") == "failed" {
        let reason = str_of(&video, "error").to_string();
        return Err(CliError::new(
            Exit::TranscodeFailed,
            video
                .get("error_code")
                .and_then(Value::as_str)
                .unwrap_or("transcode_failed"),
            format!("video {id} failed: {reason}"),
        )
        .with_extra(json!({"id": id, "status": "failed", "reason": reason})));
    }
    ctx.out.line(format!("ready: {watch}"));
    Ok(doc)
}

/// Polls the video until `ready` or `failed`, drawing its progress.
fn follow_transcode(api: &Api, id: &str) -> Result<Value> {
    let bar = upload::transcode_bar();
    let route = format!("/api/v1/videos/{id}");
    let mut network_failures = 0;
    loop {
        let video = match api.get(&route) {
            Ok(v) => {
                network_failures = 0;
                v
            }
            // A blip while waiting is not worth failing a finished upload for.
            Err(e) if e.exit == Exit::Network && network_failures < 5 => {
                network_failures += 1;
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let status = str_of(&video, "status");
        bar.set_message(status.to_string());
        match status {
            "ready" => {
                bar.set_position(100);
                bar.finish();
                return Ok(video);
            }
            "failed" => {
                bar.abandon();
                return Ok(video);
            }
            _ => {
                if let Some(p) = video.get("progress").and_then(Value::as_u64) {
                    bar.set_position(p.min(100));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_rules() {
        let r = parse_rule("31337:0x5FbDB2315678afecb367f032d93F642f64180aa3:erc1155:7:2").unwrap();
        assert_eq!(r.chain_id, 31337);
        assert_eq!(r.standard, TokenStandard::Erc1155);
        assert_eq!(r.token_id.as_deref(), Some("7"));
        assert_eq!(r.min_balance.as_deref(), Some("2"));
        let r = parse_rule("1:0x5FbDB2315678afecb367f032d93F642f64180aa3:ERC20::1000").unwrap();
        assert_eq!((r.token_id, r.min_balance.as_deref()), (None, Some("1000")));
        for bad in [
            "",
            "1:0xabc:erc721",
            "x:0x5FbDB2315678afecb367f032d93F642f64180aa3:erc721",
            "1:0x5FbDB2315678afecb367f032d93F642f64180aa3:erc777",
            "1:2:3:4:5:6",
        ] {
            assert_eq!(parse_rule(bad).unwrap_err().exit, Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn api_urls() {
        assert_eq!(
            normalise_api("http://h:3000/".into()).unwrap(),
            "http://h:3000"
        );
        assert!(normalise_api("ftp://h".into()).is_err());
        assert!(normalise_api("nonsense".into()).is_err());
        assert!(path_segment("../x").is_err());
        assert!(path_segment("abc_DEF-1").is_ok());
    }
}
