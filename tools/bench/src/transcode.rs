//! Benchmark 3, transcode: the worker's one-process ladder vs one ffmpeg per rung, same clip, same
//! ladder plan, same encoder settings (both argument lists come from native-transcoder's builder).

use std::process::Command;

use serde_json::Value;

use crate::support::{self, built, load_average, log, output, Result};
use crate::Settings;

pub fn run_ladder(tool: &str, args: &[&str], name: &str) -> Result<Value> {
    let out = output(
        Command::new(tool)
            .arg("ladder")
            .args(args)
            .env("RUST_LOG", "warn"),
        name,
    )?;
    serde_json::from_str(&out).map_err(|e| format!("{name}: not JSON ({e}): {out}"))
}

pub fn run(s: &Settings) -> Result<()> {
    let tool = "target/release/native-transcoder";
    built(tool, "native-transcoder")?;
    let mode_flag: &[&str] = match s.transcode_baseline.as_str() {
        "parallel" => &[],
        "sequential" => &["--sequential"],
        _ => return Err("BENCH_TRANSCODE_BASELINE must be parallel or sequential".into()),
    };
    let clip = s.path("clip-1080p.mp4");
    let clip = clip
        .to_str()
        .ok_or("the temporary directory's path is not UTF-8")?;
    log(&format!(
        "generating a {} s 1920x1080 30 fps clip (testsrc2 + sine; H.264 CRF 20 + AAC)",
        s.transcode_seconds
    ));
    support::run(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &s.transcode_seconds,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            clip,
        ]),
        "ffmpeg",
    )?;

    log("transcode 1/2: single-process ladder (the worker's ffmpeg command, printed below)");
    let single_dir = s.path("ladder-single");
    let ours = run_ladder(
        tool,
        &[
            "--input",
            clip,
            "--output",
            single_dir.to_str().unwrap_or_default(),
            "--print-command",
        ],
        "native-transcoder ladder",
    )?;
    log(&format!(
        "transcode 2/2: one ffmpeg process per rung ({}), same encoder settings",
        s.transcode_baseline
    ));
    let per_rung_dir = s.path("ladder-per-rung");
    let mut args = vec![
        "--input",
        clip,
        "--output",
        per_rung_dir.to_str().unwrap_or_default(),
        "--per-rung",
    ];
    args.extend(mode_flag);
    let base = run_ladder(tool, &args, "native-transcoder ladder --per-rung")?;
    print!("{}", report(&ours, &base, load_average().0)?);
    Ok(())
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .ok_or_else(|| format!("the ladder's report has no number {key}: {v}"))
}

fn report(ours: &Value, base: &Value, load: f64) -> Result<String> {
    let input = &ours["input"];
    let rungs: Vec<&str> = ours["rungs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = format!(
        "clip: {:.2} s {}x{} {:.2} fps; ladder {}; x264 preset {}; load average {load:.2}\n",
        num(ours, "clip_seconds")?,
        input["width"],
        input["height"],
        num(input, "fps")?,
        rungs.join(", "),
        ours["preset"].as_str().unwrap_or_default(),
    );
    out += &format!(
        "{:40} {:>9} {:>8} {:>9} {:>12}\n",
        "", "processes", "wall s", "realtime", "ffmpeg CPU s"
    );
    let base_name = format!(
        "one ffmpeg per rung ({})",
        base["mode"].as_str().unwrap_or_default()
    );
    for (name, r) in [
        ("single-process ladder (ours)", ours),
        (base_name.as_str(), base),
    ] {
        out += &format!(
            "{name:40} {:9} {:8.2} {:8.2}x {:12.2}\n",
            r["processes"]
                .as_u64()
                .ok_or("the ladder's report has no processes")?,
            num(r, "wall_seconds")?,
            num(r, "realtime")?,
            num(r, "cpu_seconds")?,
        );
    }
    let ratio = num(base, "wall_seconds")? / num(ours, "wall_seconds")?;
    let cpu_ratio = num(base, "cpu_seconds")? / num(ours, "cpu_seconds")?.max(1e-9);
    out += &format!("CPU-time ratio (per-rung / ours): {cpu_ratio:.2}x\n");
    let met = if ratio >= 1.5 { "met" } else { "NOT met" };
    out += &format!(
        "transcode speed-up (per-rung wall / ours): {ratio:.2}x  (target >= 1.5: {met})\n"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_the_shell_printed_it() {
        let ours = serde_json::json!({"mode": "single", "input": {"width": 1920, "height": 1080, "fps": 30.0, "audio": true},
            "rungs": ["1080p", "720p"], "preset": "veryfast", "processes": 1, "clip_seconds": 20.0,
            "wall_seconds": 10.0, "cpu_seconds": 19.5, "realtime": 2.0});
        let base = serde_json::json!({"mode": "parallel", "input": {"width": 1920, "height": 1080, "fps": 30.0, "audio": true},
            "rungs": ["1080p", "720p"], "preset": "veryfast", "processes": 2, "clip_seconds": 20.0,
            "wall_seconds": 16.0, "cpu_seconds": 30.25, "realtime": 1.25});
        assert_eq!(
            report(&ours, &base, 1.5).unwrap(),
            "clip: 20.00 s 1920x1080 30.00 fps; ladder 1080p, 720p; x264 preset veryfast; load average 1.50
                                         processes   wall s  realtime ffmpeg CPU s
single-process ladder (ours)                     1    10.00     2.00x        19.50
one ffmpeg per rung (parallel)                   2    16.00     1.25x        30.25
CPU-time ratio (per-rung / ours): 1.55x
transcode speed-up (per-rung wall / ours): 1.60x  (target >= 1.5: met)
"
        );
    }
}
