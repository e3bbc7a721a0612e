//! Pure decisions about the ladder: reading ffprobe's answer, choosing rungs, reading ffmpeg's
//! playlists back, and the codecs string. No processes here, so it is unit-tested directly.

use serde_json::Value;

/// Segment length in seconds. Keyframes are forced on this grid in every rung, so every
/// rendition's segment N covers the same time span and players can switch at any boundary.
pub const SEGMENT_SECS: u32 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Display size (rotation applied: ffmpeg auto-rotates when decoding).
    pub width: u32,
    pub height: u32,
    /// Output frame rate as a rational (capped at 60 fps).
    pub fps_num: u32,
    pub fps_den: u32,
    /// The source's own frame rate, before capping (what the source limits look at).
    pub source_fps: f64,
    pub duration: f64,
    /// ffprobe stream indexes.
    pub video_index: u64,
    pub audio_index: Option<u64>,
}

impl Probe {
    pub fn fps(&self) -> f64 {
        self.fps_num as f64 / self.fps_den as f64
    }

    /// Frames per segment: the fixed GOP length.
    pub fn gop(&self) -> u32 {
        ((SEGMENT_SECS as f64) * self.fps()).round().max(1.0) as u32
    }
}

fn rational(s: &str) -> Option<(u32, u32)> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d) = (n.trim().parse::<u32>().ok()?, d.trim().parse::<u32>().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Reads `ffprobe -print_format json -show_streams -show_format`. `Err` is the readable reason
/// the upload is not a playable video.
pub fn parse_probe(json: &Value) -> Result<Probe, String> {
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let format_name = json["format"]["format_name"].as_str().unwrap_or("");
    let is_video = |s: &&Value| {
        s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64().unwrap_or(0) == 0
    };
    let Some(video) = streams.iter().find(is_video) else {
        if streams.iter().any(|s| s["codec_type"] == "video") {
            return Err(
                "the upload is not a video: it has only a cover image, no video stream".into(),
            );
        }
        return Err("the upload is not a video: ffprobe found no video stream".into());
    };
    if format_name.contains("image2") || format_name.ends_with("_pipe") {
        return Err(format!(
            "the upload is not a video: it is a still image ({format_name})"
        ));
    }
    let (mut width, mut height) = (
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
    );
    if width == 0 || height == 0 {
        return Err(
            "the upload is not a playable video: its video stream has no picture size".into(),
        );
    }
    let rotation = video["side_data_list"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["rotation"].as_i64())
        .or_else(|| {
            video["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .unwrap_or(0);
    if rotation.rem_euclid(180) == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    let duration = number(&json["format"]["duration"])
        .or_else(|| number(&video["duration"]))
        .filter(|d| d.is_finite())
        .unwrap_or(0.0);
    if duration <= 0.0 {
        return Err("the upload is not a playable video: it has no duration".into());
    }
    let (mut num, mut den) = video["avg_frame_rate"]
        .as_str()
        .and_then(rational)
        .or_else(|| video["r_frame_rate"].as_str().and_then(rational))
        .unwrap_or((30, 1));
    let source_fps = num as f64 / den as f64;
    // High-frame-rate sources are halved until they fit players' and encoders' usual limits.
    while num as f64 / den as f64 > 60.0 + 1e-6 {
        if num % 2 == 0 {
            num /= 2;
        } else {
            den *= 2;
        }
    }
    let audio_index = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .and_then(|s| s["index"].as_u64());
    Ok(Probe {
        width,
        height,
        fps_num: num,
        fps_den: den,
        source_fps,
        duration,
        video_index: video["index"].as_u64().unwrap_or(0),
        audio_index,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

impl Rung {
    /// Capped VBR: peaks are held near the target so the advertised bandwidth is honest.
    pub fn maxrate_kbps(&self) -> u32 {
        self.video_kbps * 107 / 100
    }
    pub fn bufsize_kbps(&self) -> u32 {
        self.video_kbps * 3 / 2
    }
}

/// Short side → H.264 target bitrate at up to 30 fps (Apple's HLS authoring figures, rounded).
const LADDER: [(u32, u32); 5] = [
    (1080, 5000),
    (720, 2800),
    (480, 1400),
    (360, 800),
    (240, 400),
];
/// The audio track: AAC-LC (ffmpeg's native `aac` encoder's default profile, hence
/// `mp4a.40.2`), stereo, 48 kHz, encoded once and shared by every rung.
pub const AUDIO_KBPS: u32 = 128;
pub const AUDIO_CODECS: &str = "mp4a.40.2";
pub const AUDIO_CHANNELS: u32 = 2;
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;
/// The audio track's name: its directory under the video and its media playlist's name.
/// Rung names end in `p`, so it cannot collide with one.
pub const AUDIO_TRACK: &str = "audio";

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The rungs for a source: every standard rung whose short side is not above the source's (no
/// upscaling), or one rung at the source's own size when it is smaller than the smallest.
/// Portrait sources are laddered by their short side too, so a 1080x1920 phone video gets 1080p.
pub fn plan(width: u32, height: u32, fps: f64) -> Vec<Rung> {
    let short = width.min(height);
    let scale = |side: u32| -> (u32, u32) {
        if width >= height {
            (
                even(width as f64 * side as f64 / height as f64),
                even(side as f64),
            )
        } else {
            (
                even(side as f64),
                even(height as f64 * side as f64 / width as f64),
            )
        }
    };
    // More frames need more bits; 50/60 fps get 1.5x (a common rule of thumb).
    let fps_factor = if fps > 31.0 { 1.5 } else { 1.0 };
    let mut rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|(side, _)| *side <= short)
        .map(|&(side, kbps)| {
            let (w, h) = scale(side);
            Rung {
                name: format!("{side}p"),
                width: w,
                height: h,
                video_kbps: (kbps as f64 * fps_factor) as u32,
            }
        })
        .collect();
    if rungs.is_empty() {
        let (w, h) = (even(width as f64), even(height as f64));
        rungs.push(Rung {
            name: format!("{}p", w.min(h)),
            width: w,
            height: h,
            video_kbps: (300.0 * fps_factor) as u32,
        });
    }
    rungs
}

/// A media playlist as ffmpeg's HLS muxer writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub init: String,
    pub segments: Vec<(String, f64)>,
}

pub fn parse_media_playlist(text: &str) -> Result<MediaPlaylist, String> {
    let mut init = None;
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = rest
                .split("URI=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .ok_or("an EXT-X-MAP has no URI")?;
            init = Some(uri.to_string());
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest.split(',').next().unwrap_or("").trim();
            pending = Some(
                d.parse()
                    .map_err(|_| format!("bad EXTINF duration {d:?}"))?,
            );
        } else if !line.starts_with('#') {
            let d = pending.take().ok_or("a segment URI without EXTINF")?;
            segments.push((line.to_string(), d));
        }
    }
    let init = init.ok_or("the playlist has no EXT-X-MAP (init segment)")?;
    if segments.is_empty() {
        return Err("the playlist has no segments".into());
    }
    Ok(MediaPlaylist { init, segments })
}

/// `avc1.PPCCLL` from the avcC box of an init segment: profile, constraint flags and level
/// exactly as the decoder configuration declares them (what MSE's isTypeSupported checks).
pub fn avc1_from_init(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    let b = init.get(at + 4..at + 8)?;
    (b[0] == 1).then(|| format!("avc1.{:02x}{:02x}{:02x}", b[1], b[2], b[3]))
}

/// The same string from ffprobe's `profile` and `level`, for when the box cannot be read.
pub fn avc1_from_probe(profile: &str, level: i64) -> Option<String> {
    let (p, c) = match profile {
        "Constrained Baseline" => (0x42, 0xe0),
        "Baseline" => (0x42, 0x00),
        "Main" => (0x4d, 0x40),
        "Extended" => (0x58, 0x00),
        "High" => (0x64, 0x00),
        "High 10" => (0x6e, 0x00),
        "High 4:2:2" => (0x7a, 0x00),
        "High 4:4:4 Predictive" => (0xf4, 0x00),
        _ => return None,
    };
    (0..=255)
        .contains(&level)
        .then(|| format!("avc1.{p:02x}{c:02x}{level:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe_json(w: u64, h: u64, audio: bool) -> Value {
        let mut streams = vec![
            json!({"index": 0, "codec_type": "video", "width": w, "height": h,
            "avg_frame_rate": "30000/1001", "disposition": {"attached_pic": 0}}),
        ];
        if audio {
            streams.push(json!({"index": 1, "codec_type": "audio"}));
        }
        json!({"streams": streams, "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "12.5"}})
    }

    #[test]
    fn probe_reads_size_rate_duration_audio() {
        let p = parse_probe(&probe_json(1920, 1080, true)).unwrap();
        assert_eq!(
            (p.width, p.height, p.fps_num, p.fps_den),
            (1920, 1080, 30000, 1001)
        );
        assert_eq!(p.duration, 12.5);
        assert_eq!(p.audio_index, Some(1));
        assert_eq!(p.gop(), 120);
        assert_eq!(
            parse_probe(&probe_json(640, 360, false))
                .unwrap()
                .audio_index,
            None
        );
    }

    #[test]
    fn probe_refuses_what_is_not_video() {
        let audio_only = json!({"streams": [{"index": 0, "codec_type": "audio"}],
            "format": {"format_name": "mp3", "duration": "3"}});
        assert_eq!(
            parse_probe(&audio_only).unwrap_err(),
            "the upload is not a video: ffprobe found no video stream"
        );
        let cover = json!({"streams": [{"index": 0, "codec_type": "audio"},
            {"index": 1, "codec_type": "video", "width": 500, "height": 500, "disposition": {"attached_pic": 1}}],
            "format": {"format_name": "mp3", "duration": "3"}});
        assert!(parse_probe(&cover).unwrap_err().contains("cover image"));
        let image = json!({"streams": [{"index": 0, "codec_type": "video", "width": 50, "height": 50}],
            "format": {"format_name": "png_pipe"}});
        assert!(parse_probe(&image).unwrap_err().contains("still image"));
        let mut zero = probe_json(640, 360, false);
        zero["format"]["duration"] = json!("0.000000");
        assert!(parse_probe(&zero).unwrap_err().contains("no duration"));
    }

    #[test]
    fn rotation_and_high_frame_rates() {
        let mut j = probe_json(1920, 1080, false);
        j["streams"][0]["side_data_list"] = json!([{"rotation": -90}]);
        j["streams"][0]["avg_frame_rate"] = json!("120/1");
        let p = parse_probe(&j).unwrap();
        assert_eq!((p.width, p.height), (1080, 1920));
        assert_eq!((p.fps_num, p.fps_den), (60, 1));
    }

    #[test]
    fn ladder_never_upscales() {
        let names = |w, h| {
            plan(w, h, 30.0)
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1920, 1080), ["1080p", "720p", "480p", "360p", "240p"]);
        assert_eq!(names(640, 360), ["360p", "240p"]);
        assert_eq!(names(1280, 700), ["480p", "360p", "240p"]);
        assert_eq!(names(1080, 1920), ["1080p", "720p", "480p", "360p", "240p"]);
        let tiny = plan(176, 144, 30.0);
        assert_eq!((tiny.len(), tiny[0].width, tiny[0].height), (1, 176, 144));
        let r = &plan(640, 360, 30.0)[1];
        assert_eq!((r.width, r.height), (426, 240));
        let portrait = &plan(1080, 1920, 30.0)[1];
        assert_eq!((portrait.width, portrait.height), (720, 1280));
        assert!(plan(1920, 1080, 60.0)[0].video_kbps > plan(1920, 1080, 30.0)[0].video_kbps);
    }

    #[test]
    fn playlists_and_codecs() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init_0.mp4\"\n\
                    #EXTINF:4.000000,\nseg_00001.m4s\n#EXTINF:1.033333,\nseg_00002.m4s\n#EXT-X-ENDLIST\n";
        let p = parse_media_playlist(text).unwrap();
        assert_eq!(p.init, "init_0.mp4");
        assert_eq!(
            p.segments,
            vec![
                ("seg_00001.m4s".into(), 4.0),
                ("seg_00002.m4s".into(), 1.033333)
            ]
        );
        assert!(parse_media_playlist("#EXTM3U\n").is_err());
        let init = [b"....avcC".as_slice(), &[1, 0x64, 0x00, 0x1f, 0xff]].concat();
        assert_eq!(avc1_from_init(&init).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc1_from_probe("High", 31).as_deref(), Some("avc1.64001f"));
        assert_eq!(
            avc1_from_probe("Constrained Baseline", 30).as_deref(),
            Some("avc1.42e01e")
        );
    }
}
