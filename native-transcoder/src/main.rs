//! `native-transcoder serve` (tus upload origin and media origin), `native-transcoder work`
//! (ffmpeg queue worker) and `native-transcoder ladder` (one transcode, for benchmarks). See
//! docs/native-transcoder.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use native_transcoder::bench::Mode;
use native_transcoder::config::{check_ffmpeg, prepare_media_dir, Keys, PlaybackKeys};
use native_transcoder::events::EventSender;
use native_transcoder::intake::SourceLimits;
use native_transcoder::server::{serve, ServeConfig};
use native_transcoder::transcode::Tools;
use native_transcoder::tus::UploadPolicy;
use native_transcoder::worker::{WorkConfig, Worker};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    version,
    about = "StreamGate's native side: tus upload origin and ffmpeg worker"
)]
struct Cli {
    /// Log lines as text (for a person) or JSON (one object per line, for a collector).
    #[arg(
        long,
        global = true,
        env = "STREAMGATE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The tus 1.0 upload origin and the token-checked media origin.
    Serve(ServeArgs),
    /// The transcode worker: consumes streamgate:jobs and drives ffmpeg.
    Work(WorkArgs),
    /// Transcode one file with the worker's ladder (or one ffmpeg per rung) and print timings.
    Ladder(LadderArgs),
}

/// Secrets come from the environment only: a flag would show in `ps` to every local user.
#[derive(Args)]
struct Common {
    /// The media root (uploads/, sources/, media/, outbox/).
    #[arg(long, env = "STREAMGATE_MEDIA_DIR", default_value = ".spin/media")]
    media_dir: PathBuf,
    /// The Spin app's signed-events endpoint.
    #[arg(
        long,
        env = "STREAMGATE_EVENTS_URL",
        default_value = "http://127.0.0.1:3000/internal/v1/events"
    )]
    events_url: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, env = "STREAMGATE_LISTEN", default_value = "127.0.0.1:3001")]
    listen: SocketAddr,
    /// Largest accepted upload, in bytes (2 GiB by default).
    #[arg(long, env = "STREAMGATE_MAX_UPLOAD_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// A PATCH body that sends nothing for this many seconds is cut (its bytes are kept).
    #[arg(long, env = "STREAMGATE_BODY_IDLE_SECS", default_value_t = 30)]
    body_idle_secs: u64,
    /// Bytes one wallet may upload per UTC day (declared lengths; 20 GiB by default).
    #[arg(long, env = "STREAMGATE_MAX_UPLOAD_BYTES_PER_DAY", default_value_t = 20 * 1024 * 1024 * 1024)]
    max_upload_bytes_per_day: u64,
    /// Free space the media store keeps beyond an upload's length; below it uploads get 507.
    #[arg(long, env = "STREAMGATE_MIN_FREE_BYTES", default_value_t = 1024 * 1024 * 1024)]
    min_free_bytes: u64,
    /// Incomplete uploads older than this are removed (the upload URL's lifetime, 24 h).
    #[arg(long, env = "STREAMGATE_ABANDONED_UPLOAD_SECS", default_value_t = 24 * 3600)]
    abandoned_upload_secs: u64,
    /// `max-age` of posters (public under `/posters/`, private under `/media/`); init and media
    /// segments never change, so they are `immutable` for a year whatever this says.
    #[arg(long, env = "STREAMGATE_MEDIA_MAX_AGE_SECS", default_value_t = 3600)]
    media_max_age_secs: u64,
    /// Clock skew allowed between the app that signs playback tokens and this origin: a
    /// `/media/…` token is accepted from its `st` minus this until its `exp` plus this.
    #[arg(long, env = "STREAMGATE_TOKEN_LEEWAY_SECS", default_value_t = 30)]
    token_leeway_secs: u64,
    /// Serve `/metrics` on this address too, without a token (keep it private: 127.0.0.1 or
    /// an internal network). `/metrics` on --listen needs STREAMGATE_METRICS_TOKEN.
    #[arg(long, env = "STREAMGATE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

/// The ffmpeg the worker and `ladder` drive.
#[derive(Args)]
struct ToolArgs {
    /// libx264 preset.
    #[arg(long, env = "STREAMGATE_X264_PRESET", default_value = "veryfast")]
    preset: String,
    #[arg(long, env = "STREAMGATE_FFMPEG", default_value = "ffmpeg")]
    ffmpeg: PathBuf,
    #[arg(long, env = "STREAMGATE_FFPROBE", default_value = "ffprobe")]
    ffprobe: PathBuf,
}

impl ToolArgs {
    /// The tools, once they are known to run.
    fn check(self) -> Result<Tools> {
        check_ffmpeg(&self.ffmpeg, &self.ffprobe)?;
        Ok(Tools {
            ffmpeg: self.ffmpeg,
            ffprobe: self.ffprobe,
            preset: self.preset,
        })
    }
}

#[derive(Args)]
struct LadderArgs {
    /// The source video.
    #[arg(long)]
    input: PathBuf,
    /// An empty (or new) directory for the output.
    #[arg(long)]
    output: PathBuf,
    /// The baseline: one ffmpeg process per rung (same encoder settings), all at once.
    #[arg(long)]
    per_rung: bool,
    /// With --per-rung: run the processes one after another instead.
    #[arg(long, requires = "per_rung")]
    sequential: bool,
    /// Print the ffmpeg command line(s) on stderr before running.
    #[arg(long)]
    print_command: bool,
    #[command(flatten)]
    tools: ToolArgs,
}

#[derive(Args)]
struct WorkArgs {
    #[command(flatten)]
    common: Common,
    /// The job queue as the worker's ACL user: redis://streamgate-worker:<password>@host:port.
    /// It holds a password: give it in the environment, not as a flag (`ps` shows flags).
    #[arg(
        long,
        env = "STREAMGATE_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6390"
    )]
    redis: String,
    /// Consumer name in the group; unique per worker process.
    #[arg(long, env = "STREAMGATE_WORKER_NAME")]
    consumer: Option<String>,
    /// A job whose worker has not touched it for this long is taken over (XAUTOCLAIM).
    #[arg(long, env = "STREAMGATE_CLAIM_TIMEOUT_MS", default_value_t = 60_000)]
    claim_timeout_ms: u64,
    /// On SIGTERM the current job may run this long before it is handed back.
    #[arg(long, env = "STREAMGATE_SHUTDOWN_GRACE_SECS", default_value_t = 25.0)]
    shutdown_grace_secs: f64,
    /// Serve Prometheus `/metrics` (queue, jobs, encodes, events) on this address; off by
    /// default. Keep it private (127.0.0.1 or an internal network): it has no token.
    #[arg(long, env = "STREAMGATE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    tools: ToolArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What a source may be; a source past a limit fails with its reason (docs/pipeline.md).
#[derive(Args)]
struct LimitArgs {
    /// Longest source accepted, in seconds (4 h by default).
    #[arg(long, env = "STREAMGATE_MAX_SOURCE_SECS", default_value_t = 4.0 * 3600.0)]
    max_source_secs: f64,
    /// Largest source width or height, in pixels.
    #[arg(long, env = "STREAMGATE_MAX_SOURCE_DIMENSION", default_value_t = 4096)]
    max_source_dimension: u32,
    /// Highest source frame rate accepted.
    #[arg(long, env = "STREAMGATE_MAX_SOURCE_FPS", default_value_t = 120.0)]
    max_source_fps: f64,
    /// A source with fewer bytes per second of declared duration is refused (it cannot hold
    /// what it declares).
    #[arg(
        long,
        env = "STREAMGATE_MIN_SOURCE_BYTES_PER_SEC",
        default_value_t = 1000.0
    )]
    min_source_bytes_per_sec: f64,
    /// The encode time budget: this many seconds ...
    #[arg(long, env = "STREAMGATE_ENCODE_MIN_SECS", default_value_t = 120.0)]
    encode_min_secs: f64,
    /// ... plus this many per second of source; past it ffmpeg is killed and the video fails.
    #[arg(long, env = "STREAMGATE_ENCODE_SECS_PER_SEC", default_value_t = 6.0)]
    encode_secs_per_sec: f64,
}

impl From<LimitArgs> for SourceLimits {
    fn from(a: LimitArgs) -> Self {
        SourceLimits {
            max_duration_secs: a.max_source_secs,
            max_dimension: a.max_source_dimension,
            max_frame_rate: a.max_source_fps,
            min_bytes_per_sec: a.min_source_bytes_per_sec.max(0.0),
            encode_min_secs: a.encode_min_secs.max(1.0),
            encode_secs_per_sec: a.encode_secs_per_sec.max(0.0),
        }
    }
}

/// A secret and its previous value, each from the first of its names that is set:
/// `STREAMGATE_*` first, then `SPIN_VARIABLE_*` as exported by scripts/up, so one secrets file
/// configures both sides. The names are written out whole so that a search for a variable
/// finds where it is read (tests/python/test_k8s.py checks the Deployments' env this way).
fn secret_and_previous(
    current: [&str; 2],
    previous: [&str; 2],
) -> (Option<String>, Option<String>) {
    let first_set = |names: [&str; 2]| names.into_iter().find_map(|n| std::env::var(n).ok());
    (first_set(current), first_set(previous))
}

fn keys() -> Result<Keys> {
    let (current, previous) = secret_and_previous(
        ["STREAMGATE_EVENTS_SECRET", "SPIN_VARIABLE_EVENTS_SECRET"],
        [
            "STREAMGATE_EVENTS_SECRET_PREVIOUS",
            "SPIN_VARIABLE_EVENTS_SECRET_PREVIOUS",
        ],
    );
    Keys::from_secrets(current.as_deref(), previous.as_deref())
}

/// The media origin's keys: raw `playback_secret` bytes, as the playback component signs.
fn playback_keys() -> Result<Option<PlaybackKeys>> {
    let (current, previous) = secret_and_previous(
        [
            "STREAMGATE_PLAYBACK_SECRET",
            "SPIN_VARIABLE_PLAYBACK_SECRET",
        ],
        [
            "STREAMGATE_PLAYBACK_SECRET_PREVIOUS",
            "SPIN_VARIABLE_PLAYBACK_SECRET_PREVIOUS",
        ],
    );
    PlaybackKeys::from_secrets(current.as_deref(), previous.as_deref())
}

/// Flips to true on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn run(cli: Cli) -> Result<()> {
    // Needs no secrets and no queue.
    if let Command::Ladder(a) = cli.command {
        let tools = a.tools.check()?;
        let mode = match (a.per_rung, a.sequential) {
            (false, _) => Mode::Single,
            (true, false) => Mode::PerRungParallel,
            (true, true) => Mode::PerRungSequential,
        };
        let report =
            native_transcoder::bench::run(&tools, &a.input, &a.output, mode, a.print_command)
                .await?;
        println!("{report}");
        return Ok(());
    }
    let keys = keys()?;
    let mut shutdown = shutdown_signal()?;
    match cli.command {
        Command::Serve(a) => {
            let config = ServeConfig {
                listen: a.listen,
                media_dir: a.common.media_dir,
                upload: UploadPolicy {
                    max_bytes: a.max_upload_bytes,
                    body_idle_timeout: Duration::from_secs(a.body_idle_secs.max(1)),
                    max_bytes_per_day: a.max_upload_bytes_per_day,
                    min_free_bytes: a.min_free_bytes,
                    abandoned_after: Duration::from_secs(a.abandoned_upload_secs.max(60)),
                },
                keys,
                events_url: a.common.events_url,
                // Holds a password: from the environment only (`ps` shows flags).
                jobs_redis_url: std::env::var("STREAMGATE_JOBS_REDIS_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty()),
                playback_keys: playback_keys()?,
                media_max_age: a.media_max_age_secs,
                token_leeway_secs: a.token_leeway_secs,
                // A secret: from the environment only, and an empty value means none.
                metrics_token: std::env::var("STREAMGATE_METRICS_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty()),
                metrics_listen: a.metrics_listen,
            };
            serve(config, async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
        }
        Command::Work(a) => {
            let tools = a.tools.check()?;
            prepare_media_dir(&a.common.media_dir)?;
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "worker".into());
            let consumer = a.consumer.unwrap_or_else(|| {
                format!(
                    "{host}-{}-{}",
                    std::process::id(),
                    native_transcoder::fsutil::random_hex(3)
                )
            });
            let media_dir = a.common.media_dir.clone();
            let config = WorkConfig {
                media_dir: a.common.media_dir,
                redis_url: a.redis,
                events: EventSender::new(&a.common.events_url, keys.events)?,
                tools,
                limits: a.limits.into(),
                consumer,
                claim_timeout: Duration::from_millis(a.claim_timeout_ms.max(300)),
                shutdown_grace: Duration::from_secs_f64(a.shutdown_grace_secs.max(0.0)),
            };
            let redis_url = config.redis_url.clone();
            let worker = Worker::connect(config)
                .await
                .map_err(|e| native_transcoder::redis_auth::explain(e, &redis_url))?;
            if let Some(addr) = a.metrics_listen {
                let queue = worker.queue_probe().await?;
                native_transcoder::metrics::serve_private(addr, media_dir, move || {
                    let queue = queue.clone();
                    async move { queue.sample().await }
                })
                .await?;
            }
            let cleaned = worker.clean_leftovers()?;
            if cleaned > 0 {
                tracing::info!(cleaned, "removed work directories left by a crash");
            }
            println!("native-transcoder worker ready");
            worker.run(shutdown).await
        }
        Command::Ladder(_) => unreachable!("handled above"),
    }
}

fn main() {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        );
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(native_transcoder::trace::FlatJson)
            .init(),
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("native-transcoder: {e:#}");
        std::process::exit(1);
    }
}
