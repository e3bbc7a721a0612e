//! `streamgate-host`: runs a Spin app (`spin.toml` + its `.wasm` components) the way `spin up`
//! does, on an embedded wasmtime. It exists because the Spin CLI cannot be installed where
//! StreamGate is developed and tested; the app itself stays a plain Spin app.

mod app;
mod bindings;
mod client_limit;
mod compile_cache;
mod componentize;
mod engine;
mod errors;
mod idle_body;
mod key_value;
mod limits;
mod metrics;
mod outbound_http;
mod redis;
mod request_body;
mod response_body;
mod runtime_config;
mod server;
mod sqlite;
mod sqlite_file;
mod state;
mod telemetry;
mod variables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "streamgate-host",
    version,
    about = "Spin-compatible host for StreamGate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the application (like `spin up`).
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
    /// The address to serve on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where default key-value and SQLite stores live (Spin's `.spin/`, beside the manifest by default).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A Spin runtime config file (key-value stores and SQLite databases beyond `default`).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Read `allowed_outbound_hosts` with the rules of Spin's main branch (2026) instead of
    /// released Spin 4.0.2's: a templated entry that resolves to nothing (`https://` from an
    /// empty variable) is skipped rather than refused, and IPv6 literals need no port. An app
    /// that needs this does not load on released Spin.
    #[arg(long)]
    spin_main_allowed_hosts: bool,
    /// Serve Prometheus `/metrics` on this address (off by default). It has no token: keep it
    /// on 127.0.0.1 or an internal network, never the public listener's address.
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Log lines as text (for a person) or JSON (one object per line, for a collector).
    #[arg(
        long,
        env = "STREAMGATE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(flatten)]
    limits: limits::Limits,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain on one line, without a backtrace: these are configuration
            // errors for a person to fix, not crashes.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // One line per request is a write per request: hand lines to a logging thread that batches
    // them, so the request path never blocks on stderr. The guard flushes on the way out.
    let (log_writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let cli = Cli::parse();
    let Command::Up(ref up_args) = cli.command;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(log_writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match up_args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let manifest_dir = args
        .from
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let state_dir = args.state_dir.unwrap_or_else(|| manifest_dir.join(".spin"));
    let telemetry = telemetry::init()?;

    // Bind before loading so that a busy port fails fast, and so that self-requests know
    // the real address when the port is 0.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let listen = listener.local_addr()?;

    let engine = engine::new(args.limits.max_concurrent_requests)?;
    let app = app::load(
        &engine,
        app::LoadOptions {
            manifest: &args.from,
            state_dir: &state_dir,
            runtime_config: args.runtime_config_file.as_deref(),
            listen,
            outbound_timeouts: args.limits.outbound_timeouts(),
            allowed_hosts_rules: if args.spin_main_allowed_hosts {
                streamgate_spin_app::allowed_hosts::Rules::Main
            } else {
                streamgate_spin_app::allowed_hosts::Rules::Released
            },
        },
    )
    .await?;

    println!("Serving http://{listen}");
    println!("Available Routes:");
    for route in app.router.routes() {
        let wildcard = if route.is_wildcard { " (wildcard)" } else { "" };
        println!(
            "  {}: http://{listen}{}{wildcard}",
            route.component_id, route.path
        );
    }
    use std::io::Write as _;
    std::io::stdout().flush().ok();

    for route in app.router.routes() {
        metrics::METRICS.component_loaded(&route.component_id);
    }
    let max_concurrent = args.limits.max_concurrent_requests;
    let server = Arc::new(server::Server::new(app, engine, args.limits));
    if let Some(admin) = args.admin_listen {
        let bound = metrics::serve_admin(admin, server.slots(), max_concurrent).await?;
        println!("Admin (metrics): http://{bound}/metrics");
    }
    server::serve(server, listener, shutdown_signal()).await?;
    telemetry.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
