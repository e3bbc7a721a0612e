//! `native-transcoder ladder`: the worker's transcode of one file, outside the queue, for
//! benchmarks and debugging (scripts/bench transcode).
//!
//! - default: exactly what a job runs, `transcode::probe` then `transcode::encode` (one ffmpeg
//!   process, one decode, the whole ladder, then reading the result back);
//! - `--per-rung`: the baseline, one ffmpeg process per rung, each decoding the source itself.
//!   Each process's arguments come from the same builder (`transcode::ffmpeg_args`) given a
//!   one-rung ladder, so every encoder setting (bitrate, GOP, forced keyframes, preset, profile,
//!   audio, CMAF muxing) is the worker's; no flag list is repeated here. (Each also writes its
//!   own poster frame, as the builder always does: one JPEG, negligible next to the encode.)
//!
//! Prints one JSON line on stdout: mode, rungs, processes, clip seconds, wall seconds, ffmpeg's
//! CPU seconds (user + system of the children), realtime factor (clip seconds / wall seconds).

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::intake::SourceLimits;
use crate::ladder;
use crate::transcode::{self, Tools};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The worker's single-process ladder.
    Single,
    /// One ffmpeg per rung, all started at once.
    PerRungParallel,
    /// One ffmpeg per rung, one after another.
    PerRungSequential,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Single => "single-process",
            Mode::PerRungParallel => "per-rung-parallel",
            Mode::PerRungSequential => "per-rung-sequential",
        }
    }
}

/// An argument list as a shell line (for `--print-command`).
pub fn shell_line(program: &Path, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+%".contains(&b))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    std::iter::once(quote(&program.to_string_lossy()))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU seconds (user + system) used so far by this process's waited-for children: ffmpeg's work,
/// which other load on the machine does not inflate the way it inflates wall time.
fn children_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

async fn run_ffmpeg(tools: &Tools, args: &[String]) -> Result<()> {
    let mut child = tokio::process::Command::new(&tools.ffmpeg)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", tools.ffmpeg.display()))?;
    let mut stderr = child.stderr.take().expect("piped");
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text).await;
    let status = child.wait().await?;
    if !status.success() {
        bail!("ffmpeg failed ({status}): {}", text.trim());
    }
    Ok(())
}

pub async fn run(
    tools: &Tools,
    input: &Path,
    output: &Path,
    mode: Mode,
    print_command: bool,
) -> Result<Value> {
    // The worker's own intake (container allow-list, default limits), so the benchmark runs
    // exactly the commands a job runs.
    let limits = SourceLimits::default();
    let (source, probe) = transcode::probe(tools, input, &limits)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rungs = ladder::plan(probe.width, probe.height, probe.fps());
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    if output.read_dir()?.next().is_some() {
        bail!("{} is not empty", output.display());
    }

    let cpu_before = children_cpu_seconds();
    let (processes, wall) = match mode {
        Mode::Single => {
            if print_command {
                let args = transcode::ffmpeg_args(tools, &source, &probe, &rungs, output);
                eprintln!("{}", shell_line(&tools.ffmpeg, &args));
            }
            let started = Instant::now();
            let budget = limits.encode_budget(probe.duration);
            transcode::encode(tools, &source, &probe, output, budget, |_| {})
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (1, started.elapsed())
        }
        Mode::PerRungParallel | Mode::PerRungSequential => {
            let mut commands = Vec::new();
            for rung in &rungs {
                let out = output.join(format!("rung-{}", rung.name));
                // Each baseline process also encodes the audio track, as a per-rung pipeline
                // built from the same arguments would.
                let one = std::slice::from_ref(rung);
                transcode::create_track_dirs(&probe, one, &out)?;
                let args = transcode::ffmpeg_args(tools, &source, &probe, one, &out);
                if print_command {
                    eprintln!("{}", shell_line(&tools.ffmpeg, &args));
                }
                commands.push(args);
            }
            let started = Instant::now();
            if mode == Mode::PerRungParallel {
                let handles: Vec<_> = commands
                    .into_iter()
                    .map(|args| {
                        let tools = tools.clone();
                        tokio::spawn(async move { run_ffmpeg(&tools, &args).await })
                    })
                    .collect();
                for h in handles {
                    h.await??;
                }
            } else {
                for args in &commands {
                    run_ffmpeg(tools, args).await?;
                }
            }
            (rungs.len(), started.elapsed())
        }
    };
    let wall = wall.as_secs_f64();
    let cpu = children_cpu_seconds() - cpu_before;
    Ok(json!({
        "mode": mode.name(),
        "input": {"width": probe.width, "height": probe.height, "fps": probe.fps(),
                  "audio": probe.audio_index.is_some()},
        "rungs": rungs.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "preset": tools.preset,
        "processes": processes,
        "clip_seconds": probe.duration,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "realtime": probe.duration / wall.max(1e-9),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let line = shell_line(
            Path::new("ffmpeg"),
            &[
                "-i".into(),
                "a b.mp4".into(),
                "[0:0]fps=30".into(),
                "it's".into(),
            ],
        );
        assert_eq!(line, "ffmpeg -i 'a b.mp4' '[0:0]fps=30' 'it'\\''s'");
    }
}
