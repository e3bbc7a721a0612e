//! HLS and DASH manifests, rendered from a video's stored rendition list (never from request
//! parameters), with the signed token on every URI so players that cannot add headers
//! (Safari, AVPlayer, ffmpeg) work.

use std::fmt::Write as _;

use crate::video::{AudioTrack, Rendition, Segment};

/// Where things are served and the token that opens them.
pub struct Links<'a> {
    pub video_id: &'a str,
    /// The media origin (or CDN) base URL, e.g. `http://127.0.0.1:3001`.
    pub media_base: &'a str,
    /// The `hdnts` token value.
    pub token: &'a str,
}

impl Links<'_> {
    fn media(&self, path: &str) -> String {
        format!(
            "{}/media/{}/{path}?hdnts={}",
            self.media_base.trim_end_matches('/'),
            self.video_id,
            self.token
        )
    }
}

/// Variants in a fixed order: highest bandwidth first, then by name.
fn ordered(renditions: &[Rendition]) -> Vec<&Rendition> {
    let mut v: Vec<&Rendition> = renditions.iter().collect();
    v.sort_by(|a, b| {
        b.bandwidth
            .cmp(&a.bandwidth)
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

/// The HLS group every variant names in `AUDIO=`.
const AUDIO_GROUP: &str = "audio";

/// `master.m3u8`: one `#EXT-X-STREAM-INF` per rendition and, when the video has separate
/// audio, one `#EXT-X-MEDIA` per audio track in one group. A variant's `BANDWIDTH` and
/// `AVERAGE-BANDWIDTH` count everything a player downloads to play it (its video plus the
/// largest audio track), and its `CODECS` lists the audio codecs too (RFC 8216 §4.3.4.2).
/// Media playlists are relative to it (same directory, `/stream/<id>/`), carrying the token.
pub fn hls_master(renditions: &[Rendition], audio: &[AudioTrack], token: &str) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, a) in audio.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}.m3u8?hdnts={token}\"",
            a.name,
            if i == 0 { "YES" } else { "NO" },
            a.channels,
            a.name
        );
    }
    let audio_peak = audio.iter().map(|a| a.bandwidth).max().unwrap_or(0);
    let audio_average = audio.iter().map(|a| a.average_bandwidth).max().unwrap_or(0);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for a in audio {
        if !audio_codecs.contains(&a.codecs.as_str()) {
            audio_codecs.push(&a.codecs);
        }
    }
    for r in ordered(renditions) {
        let mut codecs = r.codecs.clone();
        for c in &audio_codecs {
            codecs.push(',');
            codecs.push_str(c);
        }
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={:.3},CODECS=\"{codecs}\"",
            r.bandwidth + audio_peak,
            r.average_bandwidth + audio_average,
            r.width,
            r.height,
            r.frame_rate,
        );
        if !audio.is_empty() {
            let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(out, "\n{}.m3u8?hdnts={token}", r.name);
    }
    out
}

/// The init segment and segments of the rendition or audio track called `name` (the stem of
/// its `<name>.m3u8`), renditions first.
pub fn track_media<'a>(
    renditions: &'a [Rendition],
    audio: &'a [AudioTrack],
    name: &str,
) -> Option<(&'a str, &'a [Segment])> {
    renditions
        .iter()
        .find(|r| r.name == name)
        .map(|r| (r.init.as_str(), r.segments.as_slice()))
        .or_else(|| {
            audio
                .iter()
                .find(|a| a.name == name)
                .map(|a| (a.init.as_str(), a.segments.as_slice()))
        })
}

/// A track's media playlist (a rendition's or an audio track's): exact `#EXTINF`s,
/// `#EXT-X-TARGETDURATION` the ceiling of the longest segment, the fMP4 init segment in
/// `#EXT-X-MAP`.
pub fn hls_media(init: &str, segments: &[Segment], links: &Links<'_>) -> String {
    let longest = segments.iter().map(|s| s.duration).fold(0.0_f64, f64::max);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
        longest.ceil() as u64,
        links.media(init)
    );
    for s in segments {
        let _ = writeln!(out, "#EXTINF:{:.6},\n{}", s.duration, links.media(&s.uri));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// ISO 8601 duration with millisecond precision.
fn iso_duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds)
}

fn total(segments: &[Segment]) -> f64 {
    segments.iter().map(|s| s.duration).sum()
}

/// The video's length in seconds: its longest track's summed segment durations.
pub fn duration_secs(renditions: &[Rendition], audio: &[AudioTrack]) -> f64 {
    renditions
        .iter()
        .map(|r| total(&r.segments))
        .chain(audio.iter().map(|a| total(&a.segments)))
        .fold(0.0_f64, f64::max)
}

/// A representation's `SegmentList`: the timeline in milliseconds, then the segment URLs.
fn segment_list(out: &mut String, init: &str, segments: &[Segment], links: &Links<'_>) {
    const TIMESCALE: f64 = 1000.0;
    let _ = writeln!(
        out,
        "        <SegmentList timescale=\"{}\">\n          <Initialization sourceURL=\"{}\"/>\n          <SegmentTimeline>",
        TIMESCALE as u64,
        xml_escape(&links.media(init))
    );
    // Start times from the summed durations, so rounding never accumulates drift.
    let mut elapsed = 0.0;
    for s in segments {
        let start = (elapsed * TIMESCALE).round() as u64;
        elapsed += s.duration;
        let end = (elapsed * TIMESCALE).round() as u64;
        let _ = writeln!(out, "            <S t=\"{start}\" d=\"{}\"/>", end - start);
    }
    out.push_str("          </SegmentTimeline>\n");
    for s in segments {
        let _ = writeln!(
            out,
            "          <SegmentURL media=\"{}\"/>",
            xml_escape(&links.media(&s.uri))
        );
    }
    out.push_str("        </SegmentList>\n      </Representation>\n");
}

/// A static DASH MPD over the same CMAF segments: a video adaptation set with a representation
/// per rendition and, when the video has separate audio, an audio adaptation set with a
/// representation per track; `SegmentList` + `SegmentTimeline` (segment durations differ at
/// the end).
pub fn dash_mpd(renditions: &[Rendition], audio: &[AudioTrack], links: &Links<'_>) -> String {
    let duration = duration_secs(renditions, audio);
    let max_segment = renditions
        .iter()
        .flat_map(|r| &r.segments)
        .chain(audio.iter().flat_map(|a| &a.segments))
        .map(|s| s.duration)
        .fold(0.0_f64, f64::max);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" mediaPresentationDuration=\"{}\" maxSegmentDuration=\"{}\" minBufferTime=\"PT2.000S\">\n  <Period id=\"0\" start=\"PT0.000S\">\n    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n",
        iso_duration(duration),
        iso_duration(max_segment)
    );
    for r in ordered(renditions) {
        let _ = writeln!(
            out,
            "      <Representation id=\"{}\" bandwidth=\"{}\" width=\"{}\" height=\"{}\" frameRate=\"{}\" codecs=\"{}\">",
            xml_escape(&r.name),
            r.bandwidth,
            r.width,
            r.height,
            frame_rate(r.frame_rate),
            xml_escape(&r.codecs),
        );
        segment_list(&mut out, &r.init, &r.segments, links);
    }
    out.push_str("    </AdaptationSet>\n");
    if !audio.is_empty() {
        out.push_str("    <AdaptationSet id=\"1\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n");
        for a in audio {
            let _ = writeln!(
                out,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{}\">\n        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                xml_escape(&a.name),
                a.bandwidth,
                xml_escape(&a.codecs),
                a.sample_rate,
                a.channels,
            );
            segment_list(&mut out, &a.init, &a.segments, links);
        }
        out.push_str("    </AdaptationSet>\n");
    }
    out.push_str("  </Period>\n</MPD>\n");
    out
}

/// DASH writes frame rates as integers or fractions (`30000/1001`).
fn frame_rate(fps: f64) -> String {
    if (fps - fps.round()).abs() < 1e-3 {
        format!("{}", fps.round() as u64)
    } else {
        format!("{}/1001", (fps * 1001.0).round() as u64)
    }
}

/// Playlists rendered once per video, when its tracks are stored, and stamped per request: a
/// playlist differs between viewers only in its token (and, should the configuration change, the
/// media base URL), so both are left as marks in the kept text. A mark starts with U+0001, which
/// the rendered fields never hold ([`templates`] refuses inputs that do), so no stored text can
/// forge one.
pub mod template {
    use super::{dash_mpd, duration_secs, hls_master, hls_media, xml_escape, Links};
    use crate::video::{AudioTrack, Rendition};

    const MARK: char = '\u{1}';
    const TOKEN: &str = "\u{1}t";
    const BASE: &str = "\u{1}b";

    /// The master playlist's file name, as requested under `/stream/<id>/`.
    pub const MASTER: &str = "master.m3u8";
    /// The DASH manifest's file name.
    pub const MPD: &str = "manifest.mpd";

    /// One kept playlist: the requested file name (`master.m3u8`, `manifest.mpd`,
    /// `<track>.m3u8`) and its text with marks.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Template {
        pub file: String,
        pub body: String,
    }

    /// Every playlist of a video with the marks in place, and the video's length (what a viewing
    /// token is renewed for, [`super::duration_secs`]), or `None` if a field holds the mark
    /// character (then the playlists are rendered per request, as before).
    pub fn templates(
        video_id: &str,
        renditions: &[Rendition],
        audio: &[AudioTrack],
    ) -> Option<(f64, Vec<Template>)> {
        let marked = |s: &str| s.contains(MARK);
        let unsafe_field = marked(video_id)
            || renditions.iter().any(|r| {
                marked(&r.name)
                    || marked(&r.codecs)
                    || marked(&r.init)
                    || r.segments.iter().any(|s| marked(&s.uri))
            })
            || audio.iter().any(|a| {
                marked(&a.name)
                    || marked(&a.codecs)
                    || marked(&a.init)
                    || a.segments.iter().any(|s| marked(&s.uri))
            });
        if unsafe_field {
            return None;
        }
        let links = Links {
            video_id,
            media_base: BASE,
            token: TOKEN,
        };
        let mut out = vec![
            Template {
                file: MASTER.into(),
                body: hls_master(renditions, audio, TOKEN),
            },
            Template {
                file: MPD.into(),
                body: dash_mpd(renditions, audio, &links),
            },
        ];
        let tracks = renditions
            .iter()
            .map(|r| (&r.name, &r.init, &r.segments))
            .chain(audio.iter().map(|a| (&a.name, &a.init, &a.segments)));
        for (name, init, segments) in tracks {
            out.push(Template {
                file: format!("{name}.m3u8"),
                body: hls_media(init, segments, &links),
            });
        }
        Some((duration_secs(renditions, audio), out))
    }

    /// The playlist for one viewer: `template` (the body of a [`Template`] named `file`) with
    /// the media base URL and the token in place, escaped as the direct render escapes them
    /// (XML in the MPD, as is in HLS).
    pub fn stamp(file: &str, template: &str, media_base: &str, token: &str) -> String {
        let base = media_base.trim_end_matches('/');
        let (base, token) = if file.ends_with(".mpd") {
            (xml_escape(base), xml_escape(token))
        } else {
            (base.to_string(), token.to_string())
        };
        let mut out = String::with_capacity(template.len() + 64 * token.len());
        let mut rest = template;
        // One pass, so a token that happens to hold a mark is never stamped into again.
        while let Some(at) = rest.find(MARK) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix(TOKEN) {
                out.push_str(&token);
                rest = after;
            } else if let Some(after) = tail.strip_prefix(BASE) {
                out.push_str(&base);
                rest = after;
            } else {
                // Not written by `templates`; kept as is rather than guessed at.
                out.push(MARK);
                rest = &tail[MARK.len_utf8()..];
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, height: u32, bandwidth: u64, durations: &[f64]) -> Rendition {
        Rendition {
            name: name.into(),
            width: height * 16 / 9,
            height,
            bandwidth,
            average_bandwidth: bandwidth * 9 / 10,
            frame_rate: 30.0,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            init: format!("{name}/init.mp4"),
            segments: durations
                .iter()
                .enumerate()
                .map(|(i, d)| Segment {
                    uri: format!("{name}/seg_{:05}.m4s", i + 1),
                    duration: *d,
                })
                .collect(),
        }
    }

    fn links() -> Links<'static> {
        Links {
            video_id: "vid",
            media_base: "http://cdn.test/",
            token: "st=1~exp=2~acl=/x/*~hmac=ab",
        }
    }

    #[test]
    fn master_lists_every_variant_in_a_fixed_order_with_the_token() {
        let m = hls_master(
            &[
                rendition("360p", 360, 800_000, &[4.0]),
                rendition("720p", 720, 2_800_000, &[4.0]),
            ],
            &[],
            "T",
        );
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2800000,AVERAGE-BANDWIDTH=2520000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p.m3u8?hdnts=T\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=720000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n360p.m3u8?hdnts=T\n"
        );
    }

    #[test]
    fn media_playlist_has_exact_durations_target_map_and_endlist() {
        let r = rendition("720p", 720, 1, &[4.0, 4.004, 1.5]);
        let p = hls_media(&r.init, &r.segments, &links());
        assert!(
            p.contains("#EXT-X-TARGETDURATION:5\n"),
            "ceiling of 4.004: {p}"
        );
        assert!(p.contains("#EXT-X-MAP:URI=\"http://cdn.test/media/vid/720p/init.mp4?hdnts=st=1~exp=2~acl=/x/*~hmac=ab\"\n"));
        assert!(p.contains("#EXTINF:4.004000,\nhttp://cdn.test/media/vid/720p/seg_00002.m4s?hdnts=st=1~exp=2~acl=/x/*~hmac=ab\n"));
        assert!(p.contains("#EXTINF:1.500000,\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(p.matches("#EXTINF").count(), 3);
        for line in p.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.contains("?hdnts="),
                "every URI carries the token: {line}"
            );
        }
    }

    #[test]
    fn mpd_timeline_matches_segments_without_drift() {
        let mpd = dash_mpd(
            &[rendition("360p", 360, 800_000, &[4.0, 4.0, 1.333])],
            &[],
            &links(),
        );
        assert!(mpd.contains("mediaPresentationDuration=\"PT9.333S\""));
        assert!(mpd.contains("<S t=\"0\" d=\"4000\"/>"));
        assert!(mpd.contains("<S t=\"8000\" d=\"1333\"/>"));
        assert!(mpd.contains("<Initialization sourceURL=\"http://cdn.test/media/vid/360p/init.mp4?hdnts=st=1~exp=2~acl=/x/*~hmac=ab\"/>"));
        assert_eq!(mpd.matches("<SegmentURL").count(), 3);
        assert!(mpd.contains("frameRate=\"30\""));
        assert_eq!(frame_rate(29.97), "30000/1001");
    }

    fn audio(durations: &[f64]) -> AudioTrack {
        AudioTrack {
            name: "audio".into(),
            bandwidth: 140_000,
            average_bandwidth: 130_000,
            codecs: "mp4a.40.2".into(),
            channels: 2,
            sample_rate: 48_000,
            init: "audio/init.mp4".into(),
            segments: durations
                .iter()
                .enumerate()
                .map(|(i, d)| Segment {
                    uri: format!("audio/seg_{:05}.m4s", i + 1),
                    duration: *d,
                })
                .collect(),
        }
    }

    fn video_only(name: &str, height: u32, bandwidth: u64) -> Rendition {
        Rendition {
            codecs: "avc1.64001f".into(),
            ..rendition(name, height, bandwidth, &[4.0, 2.0])
        }
    }

    #[test]
    fn master_with_separate_audio_names_the_group_and_counts_audio_in_each_variant() {
        let m = hls_master(
            &[
                video_only("720p", 720, 2_800_000),
                video_only("360p", 360, 800_000),
            ],
            &[audio(&[4.011, 1.989])],
            "T",
        );
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio.m3u8?hdnts=T\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2940000,AVERAGE-BANDWIDTH=2650000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n720p.m3u8?hdnts=T\n\
             #EXT-X-STREAM-INF:BANDWIDTH=940000,AVERAGE-BANDWIDTH=850000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n360p.m3u8?hdnts=T\n"
        );
    }

    #[test]
    fn the_duration_is_the_longest_tracks_sum() {
        let video = video_only("360p", 360, 800_000); // 4 + 2
        assert_eq!(duration_secs(std::slice::from_ref(&video), &[]), 6.0);
        let with_audio = duration_secs(&[video], &[audio(&[4.011, 2.1])]);
        assert!((with_audio - 6.111).abs() < 1e-9, "{with_audio}");
        assert_eq!(duration_secs(&[], &[]), 0.0);
    }

    #[test]
    fn audio_media_playlist_is_an_ordinary_media_playlist() {
        let a = audio(&[4.011, 1.989]);
        let p = hls_media(&a.init, &a.segments, &links());
        assert!(p.contains("#EXT-X-TARGETDURATION:5\n"));
        assert!(p.contains("#EXT-X-MAP:URI=\"http://cdn.test/media/vid/audio/init.mp4?hdnts="));
        assert!(
            p.contains("#EXTINF:4.011000,\nhttp://cdn.test/media/vid/audio/seg_00001.m4s?hdnts=")
        );
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn mpd_with_separate_audio_has_one_adaptation_set_per_content_type() {
        let mpd = dash_mpd(
            &[video_only("360p", 360, 800_000)],
            &[audio(&[4.011, 2.1])],
            &links(),
        );
        assert_eq!(mpd.matches("<AdaptationSet ").count(), 2);
        let (video, audio_set) = mpd.split_once("contentType=\"audio\"").unwrap();
        assert!(video.contains("contentType=\"video\""));
        assert!(
            video.contains("codecs=\"avc1.64001f\""),
            "video codecs only: {video}"
        );
        assert!(!video.contains("mp4a"));
        assert!(audio_set.contains("mimeType=\"audio/mp4\""));
        assert!(audio_set.contains(
            "<Representation id=\"audio\" bandwidth=\"140000\" codecs=\"mp4a.40.2\" audioSamplingRate=\"48000\">"
        ));
        assert!(audio_set.contains("value=\"2\"/>"));
        assert!(audio_set.contains("<S t=\"4011\" d=\"2100\"/>"));
        assert!(audio_set
            .contains("<SegmentURL media=\"http://cdn.test/media/vid/audio/seg_00002.m4s?hdnts="));
        // The longest track sets the presentation's duration.
        assert!(mpd.contains("mediaPresentationDuration=\"PT6.111S\""));
        assert!(mpd.contains("maxSegmentDuration=\"PT4.011S\""));
    }

    /// Every printable ASCII character, the characters XML escapes among them, something
    /// outside ASCII and the mark itself: whatever the token alphabet allows (EdgeAuth fields,
    /// `!`-joined ACLs, free `data`), stamping must equal the direct render.
    const ODD_TOKENS: &[&str] = &[
        "st=1764585600~exp=1764589800~acl=/stream/vid/*!/media/vid/*~data=a&b<c>\"d'e~hmac=0f",
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        "\u{1}t\u{1}b~é~\u{1}",
        "",
    ];

    fn ladder() -> (Vec<Rendition>, Vec<AudioTrack>) {
        (
            vec![
                video_only("360p", 360, 800_000),
                video_only("720p", 720, 2_800_000),
            ],
            vec![audio(&[4.011, 1.989])],
        )
    }

    #[test]
    fn stamped_templates_equal_the_direct_render_for_hls_and_dash() {
        for (renditions, audio) in [
            ladder(),
            (vec![rendition("240p", 240, 1, &[4.0, 0.5])], vec![]),
        ] {
            let (duration, kept) = template::templates("vid", &renditions, &audio).unwrap();
            assert_eq!(duration, duration_secs(&renditions, &audio));
            let files: Vec<&str> = kept.iter().map(|t| t.file.as_str()).collect();
            let mut expected = vec!["master.m3u8".to_string(), "manifest.mpd".to_string()];
            expected.extend(renditions.iter().map(|r| format!("{}.m3u8", r.name)));
            expected.extend(audio.iter().map(|a| format!("{}.m3u8", a.name)));
            assert_eq!(files, expected);
            for base in ["http://cdn.test/", "https://media.example.com/a&b"] {
                for token in ODD_TOKENS {
                    let links = Links {
                        video_id: "vid",
                        media_base: base,
                        token,
                    };
                    for t in &kept {
                        let direct = match t.file.as_str() {
                            "master.m3u8" => hls_master(&renditions, &audio, token),
                            "manifest.mpd" => dash_mpd(&renditions, &audio, &links),
                            file => {
                                let name = file.strip_suffix(".m3u8").unwrap();
                                let (init, segments) =
                                    track_media(&renditions, &audio, name).unwrap();
                                hls_media(init, segments, &links)
                            }
                        };
                        let stamped = template::stamp(&t.file, &t.body, base, token);
                        assert_eq!(stamped, direct, "{} with token {token:?}", t.file);
                    }
                }
            }
        }
    }

    #[test]
    fn a_template_holds_no_token_and_no_base() {
        let (renditions, audio) = ladder();
        let (_, kept) = template::templates("vid", &renditions, &audio).unwrap();
        for t in kept {
            assert!(
                !t.body.contains("cdn.test") && !t.body.contains("hmac"),
                "{}",
                t.body
            );
            assert!(t.body.contains("hdnts=\u{1}t"), "{}", t.body);
        }
    }

    #[test]
    fn a_field_holding_the_mark_gets_no_template() {
        let (mut renditions, audio) = ladder();
        renditions[0].codecs = "avc1\u{1}t".into();
        assert!(template::templates("vid", &renditions, &audio).is_none());
        assert!(template::templates("v\u{1}b", &ladder().0, &[]).is_none());
    }
}
