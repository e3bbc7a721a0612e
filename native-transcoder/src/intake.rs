//! What an upload may be before anything decodes it (docs/pipeline.md, "What the worker
//! decodes"). An upload is untrusted bytes: its container is decided here from its first bytes
//! against an allow-list of plain media containers, and ffprobe and ffmpeg are then told that
//! container (`-f`), with only the `file` protocol and with the container's own ways of naming
//! other files switched off. ffmpeg's format auto-detection is never used on an upload: it
//! would follow concat lists, HLS/DASH playlists and image-sequence patterns to other videos'
//! files.
//!
//! The magic-byte test is written here rather than taken from a file-type crate because what
//! matters is the mapping to exactly one ffmpeg demuxer, and the three signatures are short.

use crate::ladder::Probe;

/// A container the worker decodes, and the one demuxer that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO BMFF: MP4, MOV, M4V, 3GP (the `mov` demuxer).
    IsoBmff,
    /// Matroska and WebM (EBML).
    Matroska,
    /// MPEG transport stream: broadcast TS (188-byte packets) and M2TS/AVCHD (192-byte).
    MpegTs,
}

/// How many bytes of the upload `Container::sniff` wants to see.
pub const SNIFF_BYTES: usize = 4096;

/// Top-level ISO BMFF / QuickTime box types a real file starts with (`ftyp` for every MP4;
/// old QuickTime files may start with `moov`, `mdat`, `wide`, `free`, `skip` or `pnot`).
const ISO_FIRST_BOXES: [&[u8; 4]; 7] = [
    b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot",
];

impl Container {
    /// The container of an upload from its first bytes, or `None` when it is not one the
    /// worker decodes.
    pub fn sniff(head: &[u8]) -> Option<Container> {
        if head.len() >= 8 && ISO_FIRST_BOXES.iter().any(|t| &head[4..8] == *t) {
            return Some(Container::IsoBmff);
        }
        if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Some(Container::Matroska);
        }
        // Three packets' sync bytes in a row, at either packet size.
        let synced =
            |first: usize, size: usize| (0..3).all(|i| head.get(first + i * size) == Some(&0x47));
        if synced(0, 188) || synced(4, 192) {
            return Some(Container::MpegTs);
        }
        None
    }

    /// The ffmpeg demuxer name.
    pub fn demuxer(self) -> &'static str {
        match self {
            Container::IsoBmff => "mov",
            Container::Matroska => "matroska",
            Container::MpegTs => "mpegts",
        }
    }

    /// What users call it, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Container::IsoBmff => "MP4/MOV",
            Container::Matroska => "Matroska/WebM",
            Container::MpegTs => "MPEG-TS",
        }
    }

    /// The input options that go before `-i` on every ffprobe and ffmpeg run over an upload,
    /// followed by the input itself (`file:` so that no part of the path is read as a
    /// protocol).
    pub fn input_args(self, source: &std::path::Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            // Only local files, and only through this one demuxer (also for anything a
            // demuxer might open on its own).
            "-protocol_whitelist".into(),
            "file".into(),
            "-format_whitelist".into(),
            self.demuxer().into(),
            "-f".into(),
            self.demuxer().into(),
        ];
        if self == Container::IsoBmff {
            // QuickTime data references can point at other files; off (also ffmpeg's
            // default, stated so that a changed default cannot turn them on).
            args.extend(["-enable_drefs".into(), "0".into()]);
            args.extend(["-use_absolute_path".into(), "0".into()]);
        }
        args.push("-i".into());
        args.push(format!("file:{}", source.display()));
        args
    }
}

/// Why a source is refused or a job failed, as a fixed code and a sentence for the video's
/// owner. Neither ever carries a path or ffmpeg's own output: those stay in the worker's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn unsupported_format() -> Refusal {
        Refusal::new(
            "unsupported_format",
            "the upload is not in a supported container: upload an MP4/MOV, Matroska/WebM or \
             MPEG-TS video file",
        )
    }
}

/// What a source may be, beyond its container. Each limit is a flag of `native-transcoder work`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLimits {
    pub max_duration_secs: f64,
    /// Largest width and height (display size).
    pub max_dimension: u32,
    pub max_frame_rate: f64,
    /// Below this many bytes per second of declared duration, a file cannot hold the video it
    /// declares (a few kilobytes claiming hours would have the encoder make hours of frames).
    pub min_bytes_per_sec: f64,
    /// The encode may take `encode_min_secs + duration × encode_secs_per_sec`; past that ffmpeg
    /// is killed and the video fails.
    pub encode_min_secs: f64,
    pub encode_secs_per_sec: f64,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_duration_secs: 4.0 * 3600.0,
            max_dimension: 4096,
            max_frame_rate: 120.0,
            min_bytes_per_sec: 1000.0,
            encode_min_secs: 120.0,
            encode_secs_per_sec: 6.0,
        }
    }
}

impl SourceLimits {
    /// Checks a probed source of `size` bytes.
    pub fn check(&self, probe: &Probe, size: u64) -> Result<(), Refusal> {
        if probe.duration > self.max_duration_secs {
            return Err(Refusal::new(
                "too_long",
                format!(
                    "the video is {} long; the longest accepted is {}",
                    hms(probe.duration),
                    hms(self.max_duration_secs)
                ),
            ));
        }
        if probe.width > self.max_dimension || probe.height > self.max_dimension {
            return Err(Refusal::new(
                "resolution_too_high",
                format!(
                    "the video is {}x{}; the largest accepted width or height is {}",
                    probe.width, probe.height, self.max_dimension
                ),
            ));
        }
        if probe.source_fps > self.max_frame_rate + 1e-6 {
            return Err(Refusal::new(
                "frame_rate_too_high",
                format!(
                    "the video runs at {:.0} frames per second; the most accepted is {:.0}",
                    probe.source_fps, self.max_frame_rate
                ),
            ));
        }
        if (size as f64) < probe.duration * self.min_bytes_per_sec {
            return Err(Refusal::new(
                "implausible_duration",
                format!(
                    "the file is {size} bytes but declares {} of video, which it cannot hold; \
                     upload the original recording",
                    hms(probe.duration)
                ),
            ));
        }
        Ok(())
    }

    /// How long the encode of a source of this duration may run.
    pub fn encode_budget(&self, duration: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            (self.encode_min_secs + duration.max(0.0) * self.encode_secs_per_sec).max(1.0),
        )
    }
}

/// `1:02:03` / `4:05`.
fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(w: u32, h: u32, fps: f64, duration: f64) -> Probe {
        Probe {
            width: w,
            height: h,
            fps_num: 30,
            fps_den: 1,
            source_fps: fps,
            duration,
            video_index: 0,
            audio_index: None,
        }
    }

    #[test]
    fn sniffs_the_allowed_containers_only() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom");
        assert_eq!(Container::sniff(&mp4), Some(Container::IsoBmff));
        let mut mov = vec![0, 0, 0, 8];
        mov.extend_from_slice(b"wide");
        assert_eq!(Container::sniff(&mov), Some(Container::IsoBmff));
        assert_eq!(
            Container::sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]),
            Some(Container::Matroska)
        );
        let mut ts = vec![0u8; 188 * 3];
        for i in 0..3 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(Container::sniff(&ts), Some(Container::MpegTs));
        let mut m2ts = vec![0u8; 192 * 3 + 4];
        for i in 0..3 {
            m2ts[4 + i * 192] = 0x47;
        }
        assert_eq!(Container::sniff(&m2ts), Some(Container::MpegTs));

        // What names other files, or is not a plain media container, is refused.
        for hostile in [
            &b"ffconcat version 1.0\nfile '/srv/media/sources/victim'\n"[..],
            b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n/proc/self/cwd/x.ts\n",
            b"<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"RIFF\x24\0\0\0AVI LIST",
            b"G", // one sync byte is not a stream
            b"",
        ] {
            assert_eq!(Container::sniff(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn input_args_force_the_demuxer_and_the_file_protocol() {
        let args = Container::IsoBmff.input_args(std::path::Path::new("/m/sources/v:1"));
        let joined = args.join(" ");
        assert!(joined.contains("-protocol_whitelist file"), "{joined}");
        assert!(joined.contains("-f mov"), "{joined}");
        assert!(joined.contains("-enable_drefs 0"), "{joined}");
        assert_eq!(args.last().unwrap(), "file:/m/sources/v:1");
        assert_eq!(args[args.len() - 2], "-i");
        let mkv = Container::Matroska.input_args(std::path::Path::new("/x"));
        assert!(!mkv.contains(&"-enable_drefs".to_string()));
    }

    #[test]
    fn limits_refuse_with_fixed_codes() {
        let limits = SourceLimits::default();
        let big = 1 << 40;
        assert!(limits.check(&probe(1920, 1080, 30.0, 600.0), big).is_ok());
        let code = |p: Probe, size: u64| limits.check(&p, size).unwrap_err().code;
        assert_eq!(code(probe(1920, 1080, 30.0, 5.0 * 3600.0), big), "too_long");
        assert_eq!(
            code(probe(8192, 4320, 30.0, 60.0), big),
            "resolution_too_high"
        );
        assert_eq!(
            code(probe(640, 360, 1000.0, 60.0), big),
            "frame_rate_too_high"
        );
        // 3 hours in 20 kB.
        assert_eq!(
            code(probe(64, 64, 1.0, 3.0 * 3600.0), 20_000),
            "implausible_duration"
        );
        let message = limits
            .check(&probe(640, 360, 30.0, 5.0 * 3600.0), big)
            .unwrap_err()
            .message;
        assert_eq!(
            message,
            "the video is 5:00:00 long; the longest accepted is 4:00:00"
        );
    }

    #[test]
    fn the_encode_budget_grows_with_the_duration() {
        let limits = SourceLimits::default();
        assert_eq!(limits.encode_budget(0.0).as_secs(), 120);
        assert_eq!(limits.encode_budget(60.0).as_secs(), 120 + 360);
    }
}
