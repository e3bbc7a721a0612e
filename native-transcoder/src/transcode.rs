//! The ffmpeg side of a job: probe the source, run the single-process ladder encode, and read
//! the result back into the rendition list docs/pipeline.md specifies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use streamgate_core::video::{validate_tracks, AudioTrack, Rendition, Segment};

use crate::intake::{Container, Refusal, SourceLimits, SNIFF_BYTES};
use crate::ladder::{
    self, Probe, Rung, AUDIO_CHANNELS, AUDIO_CODECS, AUDIO_KBPS, AUDIO_SAMPLE_RATE, AUDIO_TRACK,
    SEGMENT_SECS,
};

/// Why a job did not succeed. `permanent` errors fail the video at once (the input is bad);
/// the others are retried by redelivery, up to the dead-letter limit. `refusal` is what the
/// video's owner is told (a fixed code and sentence); `detail` is for the worker's log and the
/// dead-letter entry (it may name paths and quote ffmpeg).
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub refusal: Refusal,
    pub detail: String,
    pub permanent: bool,
}

impl JobError {
    /// The input is refused for good.
    pub fn permanent(refusal: Refusal) -> Self {
        JobError {
            detail: refusal.message.clone(),
            refusal,
            permanent: true,
        }
    }

    /// Something on the worker's side went wrong; another attempt may succeed.
    pub fn retry(detail: impl Into<String>) -> Self {
        JobError {
            refusal: Refusal::new(
                TRANSCODE_FAILED,
                "the video could not be transcoded; it will be tried again",
            ),
            detail: detail.into(),
            permanent: false,
        }
    }
}

/// The code of a failure on the worker's side (not the upload's fault).
pub const TRANSCODE_FAILED: &str = "transcode_failed";

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.refusal.code, self.detail)
    }
}

/// An upload as the worker reads it: the file and the one container it is decoded as.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub container: Container,
}

impl Input {
    /// The options and `-i` that every ffprobe and ffmpeg run over this input starts with.
    pub fn args(&self) -> Vec<String> {
        self.container.input_args(&self.path)
    }
}

#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// libx264 preset.
    pub preset: String,
}

fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    // Its own process group: a Ctrl-C in the worker's terminal (or a stop signal to the worker's
    // group) must reach the worker, which decides whether the encode finishes or is handed back,
    // not kill ffmpeg under it and count as a failed attempt.
    cmd.process_group(0);
    // If the worker dies (even by SIGKILL) its ffmpeg must not go on writing into a work
    // directory that the next worker will clean.
    #[cfg(target_os = "linux")]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

pub async fn ffprobe_json(tools: &Tools, input: &Input) -> Result<Value, JobError> {
    let out = command(&tools.ffprobe)
        .args(["-v", "error"])
        .args(input.args())
        .args(["-print_format", "json", "-show_streams", "-show_format"])
        .output()
        .await
        .map_err(|e| JobError::retry(format!("cannot run ffprobe: {e}")))?;
    if !out.status.success() {
        let why = last_lines(&String::from_utf8_lossy(&out.stderr), 2);
        tracing::info!(source = %input.path.display(), container = input.container.demuxer(),
            ffprobe = %why, "ffprobe cannot read the upload");
        return Err(JobError::permanent(Refusal::new(
            "unreadable_media",
            format!(
                "the upload looks like {} but cannot be read as a video: it may be damaged or \
                 incomplete",
                input.container.label()
            ),
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| JobError::retry(format!("ffprobe printed something that is not JSON: {e}")))
}

/// Decides how an upload is read: its container from its first bytes (refused unless it is on
/// the allow-list). A missing file is retried (another worker may see the shared media
/// directory).
pub fn open_input(source: &Path) -> Result<(Input, u64), JobError> {
    use std::io::Read;
    let meta = match std::fs::symlink_metadata(source) {
        Ok(m) => m,
        Err(e) => {
            return Err(JobError::retry(format!(
                "the source file {} cannot be read on this worker: {}",
                source.display(),
                e.kind()
            )))
        }
    };
    if !meta.is_file() {
        // A symlink or a directory is nothing an upload makes.
        return Err(JobError::permanent(Refusal::new(
            "source_missing",
            "the upload is not on the media store; upload the video again",
        )));
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(source)
        .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| JobError::retry(format!("cannot read {}: {e}", source.display())))?;
    let container = Container::sniff(&head)
        .ok_or_else(|| JobError::permanent(Refusal::unsupported_format()))?;
    Ok((
        Input {
            path: source.to_path_buf(),
            container,
        },
        meta.len(),
    ))
}

/// Probes the source and checks it against the limits: an unreadable, non-video or
/// out-of-limits file fails the video with its reason.
pub async fn probe(
    tools: &Tools,
    source: &Path,
    limits: &SourceLimits,
) -> Result<(Input, Probe), JobError> {
    let (input, size) = open_input(source)?;
    let json = ffprobe_json(tools, &input).await?;
    let probe = ladder::parse_probe(&json)
        .map_err(|why| JobError::permanent(Refusal::new("not_a_video", why)))?;
    limits.check(&probe, size).map_err(JobError::permanent)?;
    Ok((input, probe))
}

/// The ffmpeg arguments for the whole ladder in one process: decode once, normalise the frame
/// rate, split to one scaler per rung, encode each with the same fixed GOP, keyframes forced on
/// the segment grid (so segment N starts at the same instant in every rung), encode the audio
/// once as its own track, and let the HLS muxer write CMAF (fMP4) init + media segments per
/// track; plus a poster frame from the same decode.
pub fn ffmpeg_args(
    tools: &Tools,
    input: &Input,
    probe: &Probe,
    rungs: &[Rung],
    out: &Path,
) -> Vec<String> {
    let n = rungs.len();
    let fps = format!("{}/{}", probe.fps_num, probe.fps_den);
    let poster_frame = ((probe.duration * 0.1) * probe.fps()).floor() as u64;
    let mut graph = format!("[0:{}]fps={fps},split={}", probe.video_index, n + 1);
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    graph.push_str("[sp]");
    for (i, r) in rungs.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bicubic,setsar=1,format=yuv420p[v{i}]",
            r.width, r.height
        ));
    }
    let top = &rungs[0];
    graph.push_str(&format!(
        ";[sp]select='eq(n\\,{poster_frame})',scale={}:{},setsar=1[poster]",
        top.width, top.height
    ));

    let gop = probe.gop().to_string();
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&[
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
    ]);
    push(&["-progress", "pipe:1"]);
    a.extend(input.args());
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-filter_complex", &graph]);
    let mut stream_map = Vec::new();
    // With sound, every video variant names the one audio group: the muxer then writes the
    // audio as a variant of its own instead of muxing a copy into each rung.
    let group = if probe.audio_index.is_some() {
        format!(",agroup:{AUDIO_TRACK}")
    } else {
        String::new()
    };
    for (i, r) in rungs.iter().enumerate() {
        push(&["-map", &format!("[v{i}]")]);
        stream_map.push(format!("v:{i}{group},name:{}", r.name));
        push(&[
            &format!("-b:v:{i}"),
            &format!("{}k", r.video_kbps),
            &format!("-maxrate:v:{i}"),
            &format!("{}k", r.maxrate_kbps()),
            &format!("-bufsize:v:{i}"),
            &format!("{}k", r.bufsize_kbps()),
        ]);
    }
    push(&[
        "-c:v",
        "libx264",
        "-preset",
        &tools.preset,
        "-profile:v",
        "high",
    ]);
    push(&["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"]);
    push(&[
        "-force_key_frames",
        &format!("expr:gte(t,n_forced*{SEGMENT_SECS})"),
    ]);
    if let Some(ai) = probe.audio_index {
        push(&["-map", &format!("0:{ai}")]);
        stream_map.push(format!("a:0{group},name:{AUDIO_TRACK}"));
        push(&[
            "-c:a",
            "aac",
            "-b:a",
            &format!("{AUDIO_KBPS}k"),
            "-ac",
            &AUDIO_CHANNELS.to_string(),
            "-ar",
            &AUDIO_SAMPLE_RATE.to_string(),
        ]);
    }
    push(&["-f", "hls", "-hls_time", &SEGMENT_SECS.to_string()]);
    push(&["-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"]);
    push(&[
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        "init.mp4",
    ]);
    push(&["-start_number", "1"]);
    push(&[
        "-hls_segment_filename",
        &out.join("%v/seg_%05d.m4s").to_string_lossy(),
    ]);
    push(&["-var_stream_map", &stream_map.join(" ")]);
    push(&[&out.join("%v/index.m3u8").to_string_lossy()]);
    push(&[
        "-map",
        "[poster]",
        "-frames:v",
        "1",
        "-update",
        "1",
        "-q:v",
        "3",
    ]);
    push(&[&out.join("poster.jpg").to_string_lossy()]);
    a
}

/// The directories `ffmpeg_args` has the muxer write into (it does not create them): one per
/// rung and, with sound, the audio track's.
pub fn create_track_dirs(probe: &Probe, rungs: &[Rung], out: &Path) -> std::io::Result<()> {
    let audio = probe.audio_index.map(|_| AUDIO_TRACK);
    for dir in rungs.iter().map(|r| r.name.as_str()).chain(audio) {
        std::fs::create_dir_all(out.join(dir))?;
    }
    Ok(())
}

/// Runs the encode, calling `progress` with 0..100 as ffmpeg reports its position.
/// Past `budget` ffmpeg is killed and the video fails (`encode_timeout`): a source that takes
/// far longer than its duration to encode is one built to hold the worker.
pub async fn encode(
    tools: &Tools,
    input: &Input,
    probe: &Probe,
    out: &Path,
    budget: Duration,
    mut progress: impl FnMut(f64),
) -> Result<Value, JobError> {
    let rungs = ladder::plan(probe.width, probe.height, probe.fps());
    create_track_dirs(probe, &rungs, out)
        .map_err(|e| JobError::retry(format!("cannot create the work directory: {e}")))?;
    let args = ffmpeg_args(tools, input, probe, &rungs, out);
    tracing::debug!(?args, "ffmpeg");
    let started = Instant::now();
    let mut child = command(&tools.ffmpeg)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| JobError::retry(format!("cannot run ffmpeg: {e}")))?;
    let mut stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let run = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(us) = line.strip_prefix("out_time_us=") {
                if let Ok(us) = us.trim().parse::<i64>() {
                    let pct = (us.max(0) as f64 / 1e6 / probe.duration * 100.0).clamp(0.0, 100.0);
                    progress(pct);
                }
            }
        }
        child.wait().await
    };
    let status = match tokio::time::timeout(budget, run).await {
        Ok(status) => status.map_err(|e| JobError::retry(format!("ffmpeg did not finish: {e}")))?,
        Err(_) => {
            // Dropping `child` (kill_on_drop) ends ffmpeg.
            tracing::warn!(
                budget_secs = budget.as_secs(),
                duration = probe.duration,
                "the encode ran past its time budget; ffmpeg killed"
            );
            return Err(JobError::permanent(Refusal::new(
                "encode_timeout",
                format!(
                    "the video took longer to transcode than its time budget ({} minutes for \
                     a video of this length); re-encode it with common settings and upload it \
                     again",
                    budget.as_secs().div_ceil(60)
                ),
            )));
        }
    };
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(JobError::retry(format!(
            "ffmpeg failed ({status}): {}",
            last_lines(&stderr, 3)
        )));
    }
    let elapsed = started.elapsed();
    for r in &rungs {
        crate::metrics::METRICS
            .encode_duration
            .get_or_create(&vec![("rung", r.name.clone())])
            .observe(elapsed.as_secs_f64());
    }
    tracing::info!(
        rungs = rungs.len(),
        seconds = elapsed.as_secs_f64(),
        realtime = probe.duration / elapsed.as_secs_f64().max(1e-3),
        "ladder encoded"
    );
    if !out.join("poster.jpg").exists() {
        poster_fallback(tools, input, probe, &rungs[0], out).await?;
    }
    collect(probe, &rungs, out, probe.audio_index.is_some())
}

/// A second, seeking ffmpeg for the poster, only if the in-graph frame did not come out (e.g.
/// a source whose declared duration overstates its frames).
async fn poster_fallback(
    tools: &Tools,
    input: &Input,
    probe: &Probe,
    top: &Rung,
    out: &Path,
) -> Result<(), JobError> {
    let at = format!("{:.3}", probe.duration * 0.1);
    let status = command(&tools.ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y", "-ss", &at])
        .args(input.args())
        .args(["-frames:v", "1", "-q:v", "3", "-vf"])
        .arg(format!("scale={}:{},setsar=1", top.width, top.height))
        .arg(out.join("poster.jpg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|e| JobError::retry(format!("cannot run ffmpeg for the poster: {e}")))?;
    if status.success() && out.join("poster.jpg").exists() {
        Ok(())
    } else {
        Err(JobError::retry("ffmpeg wrote no poster image"))
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One track as ffmpeg wrote it: the init segment renamed to `init.mp4`, the segments measured.
struct WrittenTrack {
    init: Vec<u8>,
    segments: Vec<Segment>,
    /// Peak and average bits per second (RFC 8216 BANDWIDTH and AVERAGE-BANDWIDTH).
    peak: u64,
    average: u64,
    duration: f64,
}

fn incomplete(m: String) -> JobError {
    JobError::retry(format!("ffmpeg's output is incomplete: {m}"))
}

/// Reads back the playlist ffmpeg wrote in `out/<name>/` and removes it: the manifest
/// component renders playlists from the track list instead.
fn read_track(out: &Path, name: &str) -> Result<WrittenTrack, JobError> {
    let dir = out.join(name);
    let playlist = dir.join("index.m3u8");
    let text = std::fs::read_to_string(&playlist)
        .map_err(|e| incomplete(format!("{}: {e}", playlist.display())))?;
    let parsed = ladder::parse_media_playlist(&text).map_err(incomplete)?;
    let init_path = dir.join("init.mp4");
    if parsed.init != "init.mp4" {
        std::fs::rename(dir.join(&parsed.init), &init_path)
            .map_err(|e| incomplete(format!("init segment {}: {e}", parsed.init)))?;
    }
    let init = std::fs::read(&init_path).map_err(|e| incomplete(format!("init.mp4: {e}")))?;
    let (mut peak, mut total_bits, mut total_secs) = (0f64, 0f64, 0f64);
    let mut segments = Vec::new();
    for (uri, secs) in &parsed.segments {
        let size = std::fs::metadata(dir.join(uri))
            .map_err(|e| incomplete(format!("{name}/{uri}: {e}")))?
            .len();
        if size == 0 {
            return Err(incomplete(format!("{name}/{uri} is empty")));
        }
        let bits = size as f64 * 8.0;
        // A very short last segment would overstate the peak; Apple measures the peak over
        // segments of roughly target duration, so treat anything shorter as 1 s.
        peak = peak.max(bits / secs.max(1.0));
        total_bits += bits;
        total_secs += secs;
        segments.push(Segment {
            uri: format!("{name}/{uri}"),
            duration: *secs,
        });
    }
    let _ = std::fs::remove_file(&playlist);
    let average = total_bits / total_secs.max(1e-3);
    Ok(WrittenTrack {
        init,
        segments,
        // A peak below the average would be a contradiction in the playlist: it happens when
        // the bits sit in a tail shorter than 1 s (audio often ends in one 21 ms frame).
        peak: peak.max(average).ceil() as u64,
        average: average.ceil() as u64,
        duration: total_secs,
    })
}

/// Reads every track back and builds the `transcode.completed` data.
fn collect(probe: &Probe, rungs: &[Rung], out: &Path, audio: bool) -> Result<Value, JobError> {
    let mut renditions = Vec::new();
    let mut duration: f64 = 0.0;
    for r in rungs {
        let track = read_track(out, &r.name)?;
        let codecs = ladder::avc1_from_init(&track.init)
            .ok_or_else(|| incomplete(format!("{}/init.mp4 has no avcC box", r.name)))?;
        duration = duration.max(track.duration);
        renditions.push(Rendition {
            name: r.name.clone(),
            width: r.width,
            height: r.height,
            bandwidth: track.peak,
            average_bandwidth: track.average,
            frame_rate: round3(probe.fps()),
            codecs,
            init: format!("{}/init.mp4", r.name),
            segments: track.segments,
        });
    }
    let mut audio_tracks = Vec::new();
    if audio {
        let track = read_track(out, AUDIO_TRACK)?;
        duration = duration.max(track.duration);
        audio_tracks.push(AudioTrack {
            name: AUDIO_TRACK.into(),
            bandwidth: track.peak,
            average_bandwidth: track.average,
            codecs: AUDIO_CODECS.into(),
            channels: AUDIO_CHANNELS,
            sample_rate: AUDIO_SAMPLE_RATE,
            init: format!("{AUDIO_TRACK}/init.mp4"),
            segments: track.segments,
        });
    }
    // The app refuses (422) what this rejects; better to fail here, with the reason, and retry.
    validate_tracks(&renditions, &audio_tracks).map_err(|e| incomplete(e.error))?;
    Ok(json!({
        "renditions": renditions,
        "audio": audio_tracks,
        "poster": "poster.jpg",
        "duration": round3(duration),
    }))
}

/// Calls `send` at most every 5 % or 2 s of progress, never backwards.
pub struct Throttle {
    last_pct: f64,
    last_at: Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            last_pct: 0.0,
            last_at: Instant::now(),
        }
    }
}

impl Throttle {
    pub fn admit(&mut self, pct: f64) -> Option<u32> {
        let due = pct - self.last_pct >= 5.0
            || (pct > self.last_pct && self.last_at.elapsed() >= Duration::from_secs(2));
        if due {
            self.last_pct = pct;
            self.last_at = Instant::now();
            Some(pct.floor() as u32)
        } else {
            None
        }
    }
}
