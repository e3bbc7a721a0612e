//! The worker against a private redis-server, real ffmpeg and a signature-checking events
//! receiver standing in for the Spin app.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use redis::Commands;
use serde_json::Value;

const STREAM: &str = "streamgate:jobs";
const CLAIM: &[&str] = &["--claim-timeout-ms", "1500"];

fn enqueue(redis: &Redis, video: &str, source: &str) -> String {
    redis
        .conn()
        .xadd(
            STREAM,
            "*",
            &[
                ("action", "transcode"),
                ("video_id", video),
                ("source", source),
                ("enqueued_at", &now().to_string()),
            ],
        )
        .unwrap()
}

/// A media store whose `sources/<video>` is a `secs`-second 640x360 clip, a Redis with that
/// upload's transcode job queued (its entry id returned), and an app that takes every event.
fn queued_clip(
    video: &str,
    secs: u32,
    audio: bool,
) -> (tempfile::TempDir, Redis, Receiver, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sources")).unwrap();
    make_clip(
        &dir.path().join("sources").join(video),
        secs,
        "640x360",
        audio,
    );
    let redis = Redis::start();
    let receiver = Receiver::accepting();
    let entry = enqueue(&redis, video, &format!("sources/{video}"));
    (dir, redis, receiver, entry)
}

/// Whether a worker's work directory (`media/.tmp-…`) is on the media store.
fn has_work_dir(media: &Path) -> bool {
    media_dirs(media).iter().any(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")
    })
}

/// The attempt number of each `transcode.started` the app got, in order.
fn attempts(receiver: &Receiver) -> Vec<i64> {
    receiver
        .of_type("transcode.started")
        .iter()
        .map(|e| e["data"]["attempt"].as_i64().unwrap())
        .collect()
}

/// Checks a published ladder against the completed event: files exist, every segment decodes,
/// durations add up to the clip.
fn check_ladder(media: &Path, video: &str, event: &Value, clip_secs: f64, audio: bool) {
    let data = &event["data"];
    let renditions: Vec<streamgate_core::video::Rendition> =
        serde_json::from_value(data["renditions"].clone()).unwrap();
    let audio_tracks: Vec<streamgate_core::video::AudioTrack> =
        serde_json::from_value(data["audio"].clone()).unwrap();
    streamgate_core::video::validate_tracks(&renditions, &audio_tracks).unwrap();
    assert!(renditions.len() >= 2, "{renditions:?}");
    let names: HashSet<_> = renditions.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), renditions.len(), "no duplicate renditions");
    let root = media.join("media").join(video);
    assert!(root.join("poster.jpg").metadata().unwrap().len() > 0);
    assert_eq!(data["poster"], "poster.jpg");
    for r in &renditions {
        // Video only: the sound is its own track (below), not muxed into each rung.
        assert!(r.codecs.starts_with("avc1.64"), "{}", r.codecs);
        assert!(!r.codecs.contains("mp4a"), "{}", r.codecs);
        assert!(r.bandwidth >= r.average_bandwidth && r.average_bandwidth > 0);
        assert_eq!(r.frame_rate, 30.0);
        assert_eq!(r.height % 2, 0);
        let init = root.join(&r.init);
        let mut total = 0.0;
        for s in &r.segments {
            let measured = segment_duration(&init, &root.join(&s.uri), r.frame_rate);
            assert!(
                (measured - s.duration).abs() < 0.2,
                "{}: {measured} vs {}",
                s.uri,
                s.duration
            );
            assert_eq!(
                segment_packets(&init, &root.join(&s.uri), "a"),
                0,
                "{}: no audio in a video segment",
                s.uri
            );
            total += s.duration;
        }
        assert!(
            (total - clip_secs).abs() <= 0.5,
            "{}: {total} s for a {clip_secs} s clip",
            r.name
        );
        // Aligned keyframes: every rung is cut at the same instants.
        let first: Vec<_> = renditions[0].segments.iter().map(|s| s.duration).collect();
        let this: Vec<_> = r.segments.iter().map(|s| s.duration).collect();
        assert_eq!(first.len(), this.len());
        for (a, b) in first.iter().zip(&this) {
            assert!((a - b).abs() < 0.1, "{first:?} vs {this:?}");
        }
    }
    // One AAC track shared by every rung, when the source has sound.
    assert_eq!(audio_tracks.len(), usize::from(audio), "{audio_tracks:?}");
    for a in &audio_tracks {
        assert_eq!(
            (
                a.name.as_str(),
                a.codecs.as_str(),
                a.channels,
                a.sample_rate
            ),
            ("audio", "mp4a.40.2", 2, 48_000)
        );
        // 128 kb/s AAC of a sine: well under the target, never zero.
        assert!(
            a.bandwidth >= a.average_bandwidth && a.average_bandwidth > 8_000,
            "{a:?}"
        );
        assert!(a.bandwidth < 400_000, "{}", a.bandwidth);
        let init = root.join(&a.init);
        let mut total = 0.0;
        for s in &a.segments {
            let measured = audio_segment_duration(&init, &root.join(&s.uri), a.sample_rate);
            assert!(
                (measured - s.duration).abs() < 0.1,
                "{}: {measured} vs {}",
                s.uri,
                s.duration
            );
            assert_eq!(segment_packets(&init, &root.join(&s.uri), "v"), 0);
            total += s.duration;
        }
        assert!(
            (total - clip_secs).abs() <= 0.5,
            "audio: {total} s for a {clip_secs} s clip"
        );
    }
    assert!((data["duration"].as_f64().unwrap() - clip_secs).abs() <= 0.5);
    // Only published ladders and no work directories are left.
    for entry in media_dirs(media) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(!name.starts_with(".tmp-"), "leftover {name}");
    }
}

#[test]
fn a_job_becomes_a_playable_ladder_and_is_acknowledged() {
    let video = "vidLadder01";
    let (dir, redis, receiver, entry) = queued_clip(video, 3, true);
    let media = dir.path();
    let _worker = start_worker(media, &redis, &receiver.url(), CLAIM);

    let done = receiver.wait_for("transcode.completed", video, Duration::from_secs(60));
    let started = receiver.wait_for("transcode.started", video, Duration::from_secs(1));
    assert_eq!(started["data"]["attempt"], 1);
    check_ladder(media, video, &done, 3.0, true);
    let names: Vec<_> = done["data"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["360p", "240p"], "no rung above the source");
    assert_eq!(done["data"]["renditions"][1]["width"], 426);
    wait_until("the job to be acknowledged", Duration::from_secs(5), || {
        (redis.pending(STREAM, "transcoders") == 0).then_some(())
    });

    // The same job again (a crash between publishing and XACK looks like this): announced
    // again from what is on disk, not re-encoded.
    let seg = media.join("media").join(video).join("360p/seg_00001.m4s");
    let before = seg.metadata().unwrap().modified().unwrap();
    let again = redis
        .conn()
        .xadd::<_, _, _, _, String>(
            STREAM,
            "*",
            &[
                ("action", "transcode"),
                ("video_id", video),
                ("source", &format!("sources/{video}")),
            ],
        )
        .unwrap();
    assert_ne!(again, entry);
    wait_until("the re-announcement", Duration::from_secs(20), || {
        (receiver.of_type("transcode.completed").len() == 2).then_some(())
    });
    let all = receiver.of_type("transcode.completed");
    assert_eq!(all[0]["data"], all[1]["data"]);
    assert_eq!(
        receiver.of_type("transcode.started").len(),
        1,
        "not re-encoded"
    );
    assert_eq!(seg.metadata().unwrap().modified().unwrap(), before);
}

#[test]
fn a_text_file_fails_with_a_fixed_reason() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    std::fs::create_dir_all(media.join("sources")).unwrap();
    let video = "vidText01";
    std::fs::write(
        media.join("sources").join(video),
        "this is not a video\n".repeat(100),
    )
    .unwrap();
    let redis = Redis::start();
    let receiver = Receiver::accepting();
    enqueue(&redis, video, &format!("sources/{video}"));
    let _worker = start_worker(media, &redis, &receiver.url(), CLAIM);

    let failed = receiver.wait_for("transcode.failed", video, Duration::from_secs(30));
    assert_eq!(failed["data"]["final"], true);
    assert_eq!(failed["data"]["code"], "unsupported_format");
    let error = failed["data"]["error"].as_str().unwrap();
    assert!(error.contains("not in a supported container"), "{error}");
    wait_until("the job to be acknowledged", Duration::from_secs(5), || {
        (redis.pending(STREAM, "transcoders") == 0).then_some(())
    });
    assert!(!media.join("media").join(video).exists());
    let dead: i64 = redis.conn().xlen("streamgate:jobs:dead").unwrap();
    assert_eq!(dead, 0, "a bad input is final at once, not dead-lettered");
}

#[test]
fn a_worker_killed_mid_encode_is_replaced_and_the_job_completes_once() {
    let video = "vidKill01";
    let (dir, redis, receiver, _) = queued_clip(video, 12, true);
    let media = dir.path();

    // A slow preset so the kill lands mid-encode.
    let mut first = start_worker(
        media,
        &redis,
        &receiver.url(),
        &["--claim-timeout-ms", "1500", "--preset", "slower"],
    );
    receiver.wait_for("transcode.progress", video, Duration::from_secs(60));
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(
        receiver.of_type("transcode.completed").is_empty(),
        "killed too late"
    );
    assert!(
        !media.join("media").join(video).exists(),
        "nothing half-written is visible"
    );
    assert!(
        has_work_dir(media),
        "the dead worker left its work directory"
    );
    assert_eq!(
        redis.pending(STREAM, "transcoders"),
        1,
        "the job is still pending"
    );

    let _second = start_worker(media, &redis, &receiver.url(), CLAIM);
    let done = receiver.wait_for("transcode.completed", video, Duration::from_secs(120));
    assert_eq!(attempts(&receiver), [1, 2]);
    check_ladder(media, video, &done, 12.0, true);
    assert_eq!(receiver.of_type("transcode.completed").len(), 1);
    wait_until("the job to be acknowledged", Duration::from_secs(5), || {
        (redis.pending(STREAM, "transcoders") == 0).then_some(())
    });
}

#[test]
fn a_job_failing_three_times_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    let video = "vidDead01";
    let redis = Redis::start();
    let receiver = Receiver::accepting();
    // Its upload is not on this worker's media store (a retryable failure each time).
    let entry = enqueue(&redis, video, &format!("sources/{video}"));
    let _worker = start_worker(
        media,
        &redis,
        &receiver.url(),
        &["--claim-timeout-ms", "500"],
    );

    let last = wait_until("the final failure", Duration::from_secs(30), || {
        receiver
            .of_type("transcode.failed")
            .into_iter()
            .find(|e| e["data"]["final"] == true)
    });
    let failures = receiver.of_type("transcode.failed");
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(failures[..2].iter().all(|e| e["data"]["final"] == false));
    // The owner is told what happened and what to do, without the worker's paths.
    assert_eq!(last["data"]["code"], "transcode_failed");
    let told = last["data"]["error"].as_str().unwrap();
    assert!(told.contains("in 3 attempts"), "{told}");
    assert!(!told.contains("sources/"), "{told}");

    let dead: redis::streams::StreamRangeReply =
        redis.conn().xrange_all("streamgate:jobs:dead").unwrap();
    assert_eq!(dead.ids.len(), 1);
    let fields = &dead.ids[0];
    let get = |k: &str| -> String { fields.get(k).unwrap() };
    assert_eq!(get("video_id"), video);
    assert_eq!(get("source"), format!("sources/{video}"));
    assert_eq!(get("original_id"), entry);
    assert_eq!(get("deliveries"), "3");
    // The operator's record keeps the detail.
    let error = get("error");
    assert!(
        error.contains("gave up after 3 attempts") && error.contains("cannot be read"),
        "{error}"
    );
    assert_eq!(redis.pending(STREAM, "transcoders"), 0);
}

#[test]
fn sigterm_hands_an_unfinished_job_back_without_counting_it() {
    let video = "vidTerm01";
    let (dir, redis, receiver, _) = queued_clip(video, 12, false);
    let media = dir.path();

    let mut first = start_worker(
        media,
        &redis,
        &receiver.url(),
        &[
            "--claim-timeout-ms",
            "1500",
            "--preset",
            "slower",
            "--shutdown-grace-secs",
            "0",
        ],
    );
    receiver.wait_for("transcode.progress", video, Duration::from_secs(60));
    first.sigterm();
    assert!(
        first.wait_exit(Duration::from_secs(10)).success(),
        "exit 0 on SIGTERM"
    );
    assert!(receiver.of_type("transcode.completed").is_empty());
    assert!(
        !has_work_dir(media),
        "a handed-back job leaves no work directory"
    );

    let mut second = start_worker(media, &redis, &receiver.url(), CLAIM);
    let done = receiver.wait_for("transcode.completed", video, Duration::from_secs(120));
    assert_eq!(
        attempts(&receiver),
        [1, 1],
        "a handed-back attempt is not a failure"
    );
    check_ladder(media, video, &done, 12.0, false);

    // Idle: SIGTERM ends the worker at once.
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn sigterm_while_the_app_is_unreachable_stops_within_the_grace_and_leaves_the_job_pending() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    std::fs::create_dir_all(media.join("sources")).unwrap();
    let video = "vidDown01";
    std::fs::write(
        media.join("sources").join(video),
        "not a video\n".repeat(10),
    )
    .unwrap();
    let redis = Redis::start();
    // The app goes down (503) right after accepting `transcode.started`, until told otherwise:
    // the worker is then stuck reporting the final failure, outside the encode's own grace.
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app_down = down.clone();
    let receiver = Receiver::start(move |event, _| {
        let refused = event["type"] != "transcode.started";
        if refused && app_down.load(std::sync::atomic::Ordering::SeqCst) {
            503
        } else {
            200
        }
    });
    enqueue(&redis, video, &format!("sources/{video}"));
    let mut first = start_worker(
        media,
        &redis,
        &receiver.url(),
        &["--claim-timeout-ms", "1500", "--shutdown-grace-secs", "1"],
    );
    wait_until(
        "the worker to try reporting the final failure",
        Duration::from_secs(30),
        || {
            receiver
                .attempts
                .lock()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "transcode.failed")
                .then_some(())
        },
    );
    first.sigterm();
    assert!(
        first.wait_exit(Duration::from_secs(10)).success(),
        "SIGTERM ends the worker within its grace even though the app never answers"
    );
    assert_eq!(
        redis.pending(STREAM, "transcoders"),
        1,
        "not acknowledged: the failure was never delivered, so the job must run again"
    );

    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let _second = start_worker(media, &redis, &receiver.url(), CLAIM);
    let failed = receiver.wait_for("transcode.failed", video, Duration::from_secs(30));
    assert_eq!(failed["data"]["final"], true);
    wait_until(
        "the job to be acknowledged",
        Duration::from_secs(10),
        || (redis.pending(STREAM, "transcoders") == 0).then_some(()),
    );
    let dead: i64 = redis.conn().xlen("streamgate:jobs:dead").unwrap();
    assert_eq!(
        dead, 0,
        "the interrupted attempt was not counted toward the dead letter"
    );
}

#[test]
fn a_delete_job_removes_the_media_and_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    let video = "vidDelete01";
    for d in ["media/vidDelete01/360p", "uploads/vidDelete01", "sources"] {
        std::fs::create_dir_all(media.join(d)).unwrap();
    }
    std::fs::write(media.join("media/vidDelete01/360p/seg_00001.m4s"), b"x").unwrap();
    std::fs::write(media.join("sources").join(video), b"x").unwrap();
    std::fs::create_dir_all(media.join("media/vidKeep01")).unwrap();
    let redis = Redis::start();
    // The app has deleted the video already: it answers 404, which ends the retries.
    let receiver = Receiver::start(|_, _| 404);
    redis
        .conn()
        .xadd::<_, _, _, _, String>(STREAM, "*", &[("action", "delete"), ("video_id", video)])
        .unwrap();
    let _worker = start_worker(media, &redis, &receiver.url(), CLAIM);
    wait_until(
        "the delete to be acknowledged",
        Duration::from_secs(15),
        || {
            let attempted = receiver
                .attempts
                .lock()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "media.deleted");
            (attempted && redis.pending(STREAM, "transcoders") == 0).then_some(())
        },
    );
    assert!(!media.join("media").join(video).exists());
    assert!(!media.join("sources").join(video).exists());
    assert!(!media.join("uploads").join(video).exists());
    assert!(media.join("media/vidKeep01").exists());
}
