//! Uploads built to make the worker read someone else's video, or to hold it: the real worker,
//! real ffmpeg, a private redis-server. Every hostile input is made here, in the test, next to
//! a victim video whose source and published ladder sit in the same media root.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use redis::Commands;

const STREAM: &str = "streamgate:jobs";
const DEAD: &str = "streamgate:jobs:dead";
const CLAIM: &[&str] = &["--claim-timeout-ms", "1500"];
const VICTIM: &str = "vidVictim01";

fn enqueue(redis: &Redis, fields: &[(&str, &str)]) {
    redis
        .conn()
        .xadd::<_, _, _, _, String>(STREAM, "*", fields)
        .unwrap();
}

fn transcode(redis: &Redis, video: &str) {
    enqueue(redis, &[("action", "transcode"), ("video_id", video)]);
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

/// The duration ffprobe finds when left to guess the format: what the worker used to do.
fn autodetected_duration(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A media root with a victim: its 6 s source and a published ladder (segments and a playlist,
/// as a ready video has them).
fn media_with_victim(media: &Path) {
    for d in ["sources", "media/vidVictim01/360p"] {
        std::fs::create_dir_all(media.join(d)).unwrap();
    }
    make_clip(&media.join("sources").join(VICTIM), 6, "320x180", true);
    let out = media.join("media/vidVictim01/360p");
    ffmpeg(&[
        "-i",
        media.join("sources").join(VICTIM).to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        out.join("index.m3u8").to_str().unwrap(),
    ]);
}

/// Every upload the allow-list must refuse: files that name other files (relative, absolute,
/// `/proc`, nested), and real media in containers that are not on the list.
fn hostile_uploads(media: &Path, work: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let victim = media.join("sources").join(VICTIM);
    let victim = victim.to_str().unwrap();
    let ladder = media.join("media/vidVictim01/360p/index.m3u8");
    let ladder = ladder.to_str().unwrap();
    let segment = media.join("media/vidVictim01/360p/index0.ts");
    let segment = segment.to_str().unwrap();
    let text = |s: String| s.into_bytes();
    let png = work.join("frame.png");
    let avi = work.join("victim.avi");
    let gif = work.join("victim.gif");
    ffmpeg(&["-i", victim, "-frames:v", "1", png.to_str().unwrap()]);
    ffmpeg(&["-i", victim, "-c:v", "mpeg4", avi.to_str().unwrap()]);
    ffmpeg(&["-i", victim, "-t", "1", gif.to_str().unwrap()]);
    // Looks like MP4 for its first box, then is a concat list.
    let mut fake_mp4 = vec![0, 0, 0, 0x14];
    fake_mp4.extend_from_slice(b"ftypisom\0\0\0\0isom");
    fake_mp4.extend(format!("ffconcat version 1.0\nfile '{victim}'\n").bytes());
    vec![
        (
            "concat-absolute",
            text(format!("ffconcat version 1.0\nfile '{victim}'\n")),
        ),
        (
            "concat-relative",
            text(format!("ffconcat version 1.0\nfile '{VICTIM}'\n")),
        ),
        (
            "concat-dotdot",
            text(format!("ffconcat version 1.0\nfile '../sources/{VICTIM}'\n")),
        ),
        (
            "concat-proc",
            text(format!(
                "ffconcat version 1.0\nfile '/proc/self/root{victim}'\n"
            )),
        ),
        (
            "hls-media",
            text(format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\n{segment}\n#EXT-X-ENDLIST\n"
            )),
        ),
        (
            "hls-nested",
            text(format!(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nfile://{ladder}\n"
            )),
        ),
        (
            "dash",
            text(format!(
                "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
                 mediaPresentationDuration=\"PT6S\"><Period><AdaptationSet><Representation id=\"1\" \
                 bandwidth=\"1000\"><BaseURL>file://{victim}</BaseURL></Representation></AdaptationSet>\
                 </Period></MPD>\n"
            )),
        ),
        ("png-image", std::fs::read(&png).unwrap()),
        ("avi", std::fs::read(&avi).unwrap()),
        ("gif", std::fs::read(&gif).unwrap()),
        ("fake-mp4-concat", fake_mp4),
    ]
}

#[test]
fn uploads_that_name_other_files_or_are_not_allowed_containers_fail_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    media_with_victim(media);
    let work = tempfile::tempdir().unwrap();
    let uploads = hostile_uploads(media, work.path());

    // The attack is real: with format auto-detection (what the worker used to do), ffprobe
    // follows a relative concat list uploaded beside the victim's source into the victim's
    // video stream.
    let probe_me = media.join("sources").join("vidProbeMe");
    std::fs::write(&probe_me, &uploads[1].1).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&probe_me)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "320,180",
        "ffprobe, left to guess, reads the victim's video through the list"
    );
    std::fs::remove_file(&probe_me).unwrap();

    let redis = Redis::start();
    let receiver = Receiver::accepting();
    let mut videos = Vec::new();
    for (i, (name, bytes)) in uploads.iter().enumerate() {
        let video = format!("vidAttack{i:02}");
        std::fs::write(media.join("sources").join(&video), bytes).unwrap();
        transcode(&redis, &video);
        videos.push((video, *name));
    }
    let _worker = start_worker(media, &redis, &receiver.url(), CLAIM);

    for (video, name) in &videos {
        let failed = receiver.wait_for("transcode.failed", video, Duration::from_secs(60));
        let want = if *name == "fake-mp4-concat" {
            "unreadable_media"
        } else {
            "unsupported_format"
        };
        assert_eq!(failed["data"]["code"], want, "{name}: {failed}");
        assert_eq!(failed["data"]["final"], true, "{name}");
        let error = failed["data"]["error"].as_str().unwrap();
        // The owner's sentence names no path and quotes no ffmpeg output.
        assert!(
            !error.contains('/') || error.contains("MP4/MOV"),
            "{name}: {error}"
        );
        assert!(!error.contains(media.to_str().unwrap()), "{name}: {error}");
        assert!(
            !media.join("media").join(video).exists(),
            "{name}: no ladder is published"
        );
    }
    wait_until(
        "every job to be acknowledged",
        Duration::from_secs(10),
        || (redis.pending(STREAM, "transcoders") == 0).then_some(()),
    );
    assert!(receiver.of_type("transcode.completed").is_empty());
    assert!(receiver.of_type("transcode.started").len() <= videos.len());
    // The victim is untouched.
    assert!(media.join("sources").join(VICTIM).exists());
    assert!(media.join("media/vidVictim01/360p/index.m3u8").exists());
}

#[test]
fn sources_past_the_limits_are_refused_before_encoding_and_a_slow_encode_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    std::fs::create_dir_all(media.join("sources")).unwrap();
    let src = |v: &str| media.join("sources").join(v);

    // 3 frames an hour apart: a few kilobytes that declare two hours of video.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=64x64:r=1",
        "-frames:v",
        "3",
        "-vf",
        "setpts=N*3600/TB",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-f",
        "mp4",
        src("vidHours01").to_str().unwrap(),
    ]);
    let size = std::fs::metadata(src("vidHours01")).unwrap().len();
    assert!(size < 20_000, "{size}");
    let declared = autodetected_duration(&src("vidHours01")).unwrap();
    assert!(declared > 7000.0, "the clip declares hours: {declared}");

    make_clip(&src("vidLong01"), 4, "160x90", false);
    make_clip(&src("vidBig01"), 1, "640x360", false);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=240",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "mp4",
        src("vidFast01").to_str().unwrap(),
    ]);

    let redis = Redis::start();
    let receiver = Receiver::accepting();
    for v in ["vidHours01", "vidLong01", "vidBig01", "vidFast01"] {
        transcode(&redis, v);
    }
    let limits = [
        "--max-source-secs",
        "3",
        "--max-source-dimension",
        "320",
        "--max-source-fps",
        "120",
    ];
    let mut args = CLAIM.to_vec();
    args.extend(limits);
    let worker = start_worker(media, &redis, &receiver.url(), &args);
    for (video, code) in [
        ("vidHours01", "too_long"),
        ("vidLong01", "too_long"),
        ("vidBig01", "resolution_too_high"),
        ("vidFast01", "frame_rate_too_high"),
    ] {
        let failed = receiver.wait_for("transcode.failed", video, Duration::from_secs(30));
        assert_eq!(failed["data"]["code"], code, "{video}: {failed}");
        assert_eq!(failed["data"]["final"], true);
    }
    drop(worker);

    // Within the duration limit but implausible for its size: refused too (default limits).
    let receiver = Receiver::accepting();
    let worker = start_worker(media, &redis, &receiver.url(), CLAIM);
    transcode(&redis, "vidHours01");
    let failed = receiver.wait_for("transcode.failed", "vidHours01", Duration::from_secs(30));
    assert_eq!(failed["data"]["code"], "implausible_duration", "{failed}");
    assert!(
        receiver.of_type("transcode.progress").is_empty(),
        "nothing was encoded"
    );
    assert!(!media.join("media/vidHours01").exists());
    drop(worker);

    // An encode past its time budget is killed, the video fails with the reason, and the work
    // directory is gone.
    make_clip(&src("vidSlow01"), 20, "640x360", true);
    let receiver = Receiver::accepting();
    let mut args = CLAIM.to_vec();
    args.extend(["--encode-min-secs", "1", "--encode-secs-per-sec", "0"]);
    let _slow = start_worker(media, &redis, &receiver.url(), &args);
    transcode(&redis, "vidSlow01");
    let failed = receiver.wait_for("transcode.failed", "vidSlow01", Duration::from_secs(30));
    assert_eq!(failed["data"]["code"], "encode_timeout", "{failed}");
    assert_eq!(failed["data"]["final"], true);
    assert!(receiver.of_type("transcode.completed").is_empty());
    wait_until("the work directory to go", Duration::from_secs(5), || {
        media_dirs(media)
            .iter()
            .all(|p| {
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .then_some(())
    });
}

#[test]
fn forged_queue_entries_change_nothing_and_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    media_with_victim(media);
    let attacker = "vidAttacker01";
    std::fs::write(media.join("sources").join(attacker), b"x").unwrap();
    let redis = Redis::start();
    let receiver = Receiver::accepting();
    let victim_source = format!("sources/{VICTIM}");
    // The attacker's video pointed at the victim's upload; an action the worker does not have,
    // naming the victim; a path as the video id.
    enqueue(
        &redis,
        &[
            ("action", "transcode"),
            ("video_id", attacker),
            ("source", &victim_source),
        ],
    );
    enqueue(&redis, &[("action", "exec"), ("video_id", VICTIM)]);
    enqueue(&redis, &[("action", "transcode"), ("video_id", "../media")]);
    let _worker = start_worker(media, &redis, &receiver.url(), CLAIM);

    let dead: Vec<std::collections::HashMap<String, String>> =
        wait_until("three dead letters", Duration::from_secs(20), || {
            let reply: redis::streams::StreamRangeReply = redis.conn().xrange_all(DEAD).unwrap();
            (reply.ids.len() == 3).then(|| {
                reply
                    .ids
                    .iter()
                    .map(|e| {
                        e.map
                            .iter()
                            .map(|(k, v)| (k.clone(), redis::from_redis_value(v).unwrap()))
                            .collect()
                    })
                    .collect()
            })
        });
    let errors: Vec<&str> = dead.iter().map(|d| d["error"].as_str()).collect();
    assert!(
        errors[0].contains("is not the video's own upload"),
        "{errors:?}"
    );
    assert!(errors[1].contains("unknown action `exec`"), "{errors:?}");
    assert!(errors[2].contains("no valid video_id"), "{errors:?}");
    // No video was touched: no event at all went to the app.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        receiver.attempts.lock().unwrap().is_empty(),
        "{:?}",
        receiver.attempts.lock().unwrap()
    );
    assert!(!media.join("media").join(attacker).exists());
    assert!(media.join("sources").join(VICTIM).exists());
    assert!(media.join("media/vidVictim01/360p/index.m3u8").exists());
}
