//! The upload origin against a raw HTTP client and a signature-checking events receiver.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// An origin on a fresh media folder, started with `args`, whose app takes every event.
fn origin_with(args: &[&str]) -> (tempfile::TempDir, Receiver, Origin) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::accepting();
    let origin = Origin::start(dir.path(), &receiver.url(), args, &[]);
    (dir, receiver, origin)
}

/// Waits (5 s at most) until every event in the origin's outbox is delivered.
fn outbox_drains(media: &std::path::Path) {
    wait_until("the outbox to drain", Duration::from_secs(5), || {
        let n = std::fs::read_dir(media.join("outbox"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .count();
        (n == 0).then_some(())
    });
}

fn create(origin: &Origin, video: &str, length: usize) -> String {
    let token = valid_token(video);
    let len = length.to_string();
    let r = http(
        &origin.addr,
        "POST",
        &format!("/uploads/{video}?token={token}"),
        &[
            TUS,
            ("Upload-Length", &len),
            ("Upload-Metadata", "filename dGVzdC5tcDQ="),
        ],
        b"",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("Tus-Resumable"), Some("1.0.0"));
    let location = r.header("Location").unwrap().to_string();
    assert!(
        location.starts_with(&format!("/uploads/{video}/")),
        "{location}"
    );
    assert!(location.ends_with(&format!("?token={token}")), "{location}");
    location
}

fn head_offset(origin: &Origin, location: &str) -> u64 {
    let r = http(&origin.addr, "HEAD", location, &[TUS], b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    r.header("Upload-Offset").unwrap().parse().unwrap()
}

fn patch(origin: &Origin, location: &str, offset: u64, data: &[u8]) -> Reply {
    let offset = offset.to_string();
    http(
        &origin.addr,
        "PATCH",
        location,
        &[TUS, OCTETS, ("Upload-Offset", &offset)],
        data,
    )
}

#[test]
fn chunked_upload_survives_a_dropped_patch_and_announces_completion() {
    let (dir, receiver, origin) = origin_with(&[]);
    let video = "vidChunked01";
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();

    // Discovery, as tus clients and browsers' preflights do it: no token needed.
    let r = http(
        &origin.addr,
        "OPTIONS",
        &format!("/uploads/{video}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Tus-Version"), Some("1.0.0"));
    assert_eq!(r.header("Tus-Extension"), Some("creation"));
    assert_eq!(r.header("Tus-Max-Size"), Some("2147483648"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Upload-Offset"));
    assert!(r
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("PATCH"));

    let location = create(&origin, video, file.len());
    assert_eq!(head_offset(&origin, &location), 0);

    // Chunk 1.
    let r = patch(&origin, &location, 0, &file[..100_000]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("Upload-Offset"), Some("100000"));
    assert!(r
        .header("Access-Control-Expose-Headers")
        .unwrap()
        .contains("Upload-Offset"));

    // Chunk 2 is cut after 50 000 of its 100 000 bytes: what arrived is kept.
    patch_and_hang_up(
        &origin.addr,
        &location,
        100_000,
        100_000,
        &file[100_000..150_000],
    );
    let resumed = wait_until(
        "the cut PATCH to be applied",
        Duration::from_secs(10),
        || {
            let o = head_offset(&origin, &location);
            (o == 150_000).then_some(o)
        },
    );
    let part = std::fs::read_dir(dir.path().join("uploads").join(video))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "part"))
        .unwrap()
        .path();
    assert_eq!(std::fs::read(&part).unwrap(), &file[..150_000]);
    assert!(
        !dir.path().join("sources").join(video).exists(),
        "incomplete must not look complete"
    );

    // A client that thinks it is further along is told so.
    assert_eq!(
        patch(&origin, &location, 200_000, &file[200_000..]).status,
        409
    );

    // Resume from the server's offset, in two more chunks.
    assert_eq!(
        patch(&origin, &location, resumed, &file[150_000..250_000]).status,
        204
    );
    let r = patch(&origin, &location, 250_000, &file[250_000..]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("Upload-Offset"), Some("300000"));

    let source = dir.path().join("sources").join(video);
    assert_eq!(std::fs::read(&source).unwrap(), file);
    assert!(!part.exists());

    let event = receiver.wait_for("upload.completed", video, Duration::from_secs(10));
    assert_eq!(event["data"]["size"], 300_000);
    assert_eq!(event["data"]["source"], format!("sources/{video}"));
    assert!(event["id"]
        .as_str()
        .unwrap()
        .starts_with("upload.completed:"));

    // Complete is final: HEAD reports it, a new creation is refused, the outbox is empty.
    assert_eq!(head_offset(&origin, &location), 300_000);
    let token = valid_token(video);
    let r = http(
        &origin.addr,
        "POST",
        &format!("/uploads/{video}?token={token}"),
        &[TUS, ("Upload-Length", "10")],
        b"",
    );
    assert_eq!(r.status, 409, "{r:?}");
    outbox_drains(dir.path());
    assert_eq!(receiver.of_type("upload.completed").len(), 1);
}

#[test]
fn protocol_errors_get_the_tus_statuses() {
    let (_dir, receiver, origin) = origin_with(&["--max-upload-bytes", "1000"]);
    let video = "vidProto01";
    let token = valid_token(video);
    let create_path = format!("/uploads/{video}?token={token}");

    // Wrong or missing Tus-Resumable: 412 with the version we speak.
    let r = http(
        &origin.addr,
        "POST",
        &create_path,
        &[("Tus-Resumable", "0.2.2"), ("Upload-Length", "10")],
        b"",
    );
    assert_eq!(r.status, 412);
    assert_eq!(r.header("Tus-Version"), Some("1.0.0"));
    assert_eq!(r.header("Tus-Resumable"), Some("1.0.0"));
    assert_eq!(
        http(
            &origin.addr,
            "POST",
            &create_path,
            &[("Upload-Length", "10")],
            b""
        )
        .status,
        412
    );

    // Above the maximum: 413 and the limit.
    let r = http(
        &origin.addr,
        "POST",
        &create_path,
        &[TUS, ("Upload-Length", "1001")],
        b"",
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.header("Tus-Max-Size"), Some("1000"));
    let body = r.json();
    assert_eq!(body["code"], "upload_too_large");
    // No length at all.
    assert_eq!(
        http(&origin.addr, "POST", &create_path, &[TUS], b"").status,
        400
    );

    let location = create(&origin, video, 100);
    // Wrong content type: 415.
    let r = http(
        &origin.addr,
        "PATCH",
        &location,
        &[
            TUS,
            ("Content-Type", "application/octet-stream"),
            ("Upload-Offset", "0"),
        ],
        b"abc",
    );
    assert_eq!(r.status, 415);
    // Offset mismatch: 409.
    assert_eq!(patch(&origin, &location, 5, b"abc").status, 409);
    // More bytes than Upload-Length: 413, nothing written.
    assert_eq!(patch(&origin, &location, 0, &[1u8; 101]).status, 413);
    assert_eq!(head_offset(&origin, &location), 0);
    // Unknown upload: 404, still with the tus header.
    let unknown = format!("/uploads/{video}/0123456789abcdef?token={token}");
    let r = http(&origin.addr, "HEAD", &unknown, &[TUS], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Tus-Resumable"), Some("1.0.0"));
    // Traversal-shaped ids never reach the file system.
    assert_eq!(
        http(
            &origin.addr,
            "HEAD",
            &format!("/uploads/{video}/..?token={token}"),
            &[TUS],
            b""
        )
        .status,
        404
    );
    // Method override, as tus-js-client sends it through proxies that drop PATCH.
    let r = http(
        &origin.addr,
        "POST",
        &location,
        &[
            TUS,
            OCTETS,
            ("Upload-Offset", "0"),
            ("X-HTTP-Method-Override", "PATCH"),
        ],
        &[7u8; 100],
    );
    assert_eq!(r.status, 204, "{r:?}");
    receiver.wait_for("upload.completed", video, Duration::from_secs(10));

    // A new creation replaces an incomplete upload of the same video.
    let other = "vidProto02";
    let first = create(&origin, other, 50);
    assert_eq!(patch(&origin, &first, 0, &[1u8; 10]).status, 204);
    let second = create(&origin, other, 50);
    assert_eq!(http(&origin.addr, "HEAD", &first, &[TUS], b"").status, 404);
    assert_eq!(head_offset(&origin, &second), 0);
}

#[test]
fn tokens_must_be_genuine_current_and_for_this_video() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::accepting();
    let origin = Origin::start(
        dir.path(),
        &receiver.url(),
        &[],
        &[("STREAMGATE_EVENTS_SECRET_PREVIOUS", OLD_SECRET)],
    );
    let video = "vidToken01";
    let post = |token: &str| {
        http(
            &origin.addr,
            "POST",
            &format!("/uploads/{video}?token={token}"),
            &[TUS, ("Upload-Length", "10")],
            b"",
        )
    };
    let code = |r: &Reply| r.json()["code"].clone();

    let r = http(
        &origin.addr,
        "POST",
        &format!("/uploads/{video}"),
        &[TUS, ("Upload-Length", "10")],
        b"",
    );
    assert_eq!((r.status, code(&r)), (403, "missing_token".into()));
    let r = post(&valid_token(video).replace("exp=", "exp=9"));
    assert_eq!((r.status, code(&r)), (403, "invalid_token".into()));
    let r = post(&upload_token(video, SECRET, now() - 100, now() - 1));
    assert_eq!((r.status, code(&r)), (403, "token_expired".into()));
    let r = post(&valid_token("vidOther99"));
    assert_eq!((r.status, code(&r)), (403, "token_wrong_path".into()));
    // A prefix of this video's id is another video, not a wildcard.
    let r = post(&valid_token("vidToken0"));
    assert_eq!(r.status, 403);
    // A token signed with the events key (another purpose) is not an upload token.
    let wrong_purpose = streamgate_core::edge_token::sign(
        &streamgate_core::edge_token::EdgeToken {
            start: now() - 10,
            expires: now() + 100,
            acl: vec![format!("/uploads/{video}*")],
            data: None,
        },
        &streamgate_core::keys::derive(SECRET, "events"),
    );
    assert_eq!(post(&wrong_purpose).status, 403);
    // The token is checked on every request, not only at creation.
    let location = create(&origin, video, 10);
    let (path, _) = location.split_once('?').unwrap();
    let other = valid_token("vidOther99");
    assert_eq!(
        http(
            &origin.addr,
            "HEAD",
            &format!("{path}?token={other}"),
            &[TUS],
            b""
        )
        .status,
        403
    );
    assert_eq!(
        http(
            &origin.addr,
            "PATCH",
            &format!("{path}?token={other}"),
            &[TUS, OCTETS, ("Upload-Offset", "0")],
            b"x"
        )
        .status,
        403
    );
    // Key rotation: a token from the previous secret still works (percent-encoded, too).
    let old = upload_token(video, OLD_SECRET, now() - 10, now() + 100);
    let encoded: String = form_urlencoded::byte_serialize(old.as_bytes()).collect();
    let r = http(
        &origin.addr,
        "HEAD",
        &format!("{path}?token={encoded}"),
        &[TUS],
        b"",
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn an_undelivered_completion_is_retried_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The app is down (503) for this whole first run.
    let down = Receiver::start(|_, _| 503);
    let video = "vidOutbox01";
    {
        let origin = Origin::start(dir.path(), &down.url(), &[], &[]);
        let location = create(&origin, video, 5);
        let started = std::time::Instant::now();
        assert_eq!(patch(&origin, &location, 0, b"hello").status, 204);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the last PATCH answers promptly"
        );
        wait_until("retries", Duration::from_secs(10), || {
            (down.attempts.lock().unwrap().len() >= 3).then_some(())
        });
    } // killed (SIGKILL) with the event still pending
    let pending: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .collect();
    assert_eq!(pending.len(), 1);

    // Back up, flaky at first: the restarted origin re-sends until accepted.
    let up = Receiver::start(|_, n| if n < 2 { 500 } else { 200 });
    let _origin = Origin::start(dir.path(), &up.url(), &[], &[]);
    let event = up.wait_for("upload.completed", video, Duration::from_secs(15));
    assert_eq!(event["data"]["size"], 5);
    assert_eq!(
        event["id"],
        down.attempts.lock().unwrap()[0]["id"],
        "the same event id, so the app deduplicates"
    );
    outbox_drains(dir.path());
}

fn create_as(origin: &Origin, video: &str, owner: Option<&str>, length: u64) -> Reply {
    let token = streamgate_core::edge_token::sign(
        &streamgate_core::edge_token::EdgeToken {
            start: now() - 10,
            expires: now() + 3600,
            acl: vec![format!("/uploads/{video}*")],
            data: owner.map(str::to_string),
        },
        &streamgate_core::keys::derive(SECRET, "upload"),
    );
    http(
        &origin.addr,
        "POST",
        &format!("/uploads/{video}?token={token}"),
        &[TUS, ("Upload-Length", &length.to_string())],
        b"",
    )
}

#[test]
fn an_upload_whose_last_byte_arrived_is_completed_whatever_happened_to_its_request() {
    let (dir, receiver, origin) = origin_with(&[]);
    let file = [5u8; 1000];

    // A chunked body that runs past Upload-Length: 413, but every byte of the upload is kept,
    // and the upload is complete (HEAD says offset = length, which is where tus clients stop).
    let video = "vidPast01";
    let location = create(&origin, video, file.len());
    let r = patch_chunked(
        &origin.addr,
        &location,
        0,
        &[&file[..600], &file[600..], b"extra"],
        true,
    )
    .unwrap();
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["code"], "upload_too_large");
    assert_eq!(head_offset(&origin, &location), 1000);
    receiver.wait_for("upload.completed", video, Duration::from_secs(10));
    assert_eq!(
        std::fs::read(dir.path().join("sources").join(video)).unwrap(),
        file
    );

    // The connection drops after the last byte, before the chunked body's end.
    let video = "vidCut01";
    let location = create(&origin, video, file.len());
    patch_chunked(
        &origin.addr,
        &location,
        0,
        &[&file[..500], &file[500..]],
        false,
    );
    receiver.wait_for("upload.completed", video, Duration::from_secs(10));
    assert_eq!(head_offset(&origin, &location), 1000);
    assert!(dir.path().join("sources").join(video).exists());
}

#[test]
fn a_deleted_videos_upload_url_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    let receiver = Receiver::start(|e, _| {
        if e["type"] == "media.deleted" {
            404
        } else {
            200
        }
    });
    let origin = Origin::start(media, &receiver.url(), &[], &[]);
    let video = "vidGone01";
    let location = create(&origin, video, 100);
    assert_eq!(patch(&origin, &location, 0, &[1u8; 40]).status, 204);

    // The owner deletes the video: the app queues a delete job, the real worker runs it.
    let redis = Redis::start();
    redis::Commands::xadd::<_, _, _, _, String>(
        &mut redis.conn(),
        "streamgate:jobs",
        "*",
        &[("action", "delete"), ("video_id", video)],
    )
    .unwrap();
    let _worker = start_worker(
        media,
        &redis,
        &receiver.url(),
        &["--claim-timeout-ms", "1500"],
    );
    wait_until("the delete to run", Duration::from_secs(15), || {
        receiver
            .attempts
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "media.deleted")
            .then_some(())
    });

    // Resuming, HEAD and a new creation with the same URL: 410 with a code and a way forward.
    for r in [
        patch(&origin, &location, 40, &[1u8; 60]),
        http(&origin.addr, "HEAD", &location, &[TUS], b""),
        create_as(&origin, video, Some(OWNER), 100),
    ] {
        assert_eq!(r.status, 410, "{r:?}");
        if !r.body.is_empty() {
            assert_eq!(r.json()["code"], "video_deleted");
        }
    }
    assert!(!media.join("uploads").join(video).exists());
    assert!(!media.join("sources").join(video).exists());
    assert!(receiver.of_type("upload.completed").is_empty());
}

#[test]
fn quotas_and_a_full_disk_are_refused_with_their_codes() {
    let (dir, receiver, origin) = origin_with(&["--max-upload-bytes-per-day", "1000"]);
    let (alice, bob) = (OWNER, "0x2222222222222222222222222222222222222222");
    assert_eq!(
        create_as(&origin, "vidQuota01", Some(alice), 600).status,
        201
    );
    let r = create_as(&origin, "vidQuota02", Some(alice), 600);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["code"], "upload_quota_exceeded");
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    // Another wallet has its own quota; what is left of alice's still fits.
    assert_eq!(create_as(&origin, "vidQuota03", Some(bob), 600).status, 201);
    assert_eq!(
        create_as(&origin, "vidQuota04", Some(alice), 400).status,
        201
    );
    // The ledger survives a restart of the origin.
    drop(origin);
    let origin = Origin::start(
        dir.path(),
        &receiver.url(),
        &["--max-upload-bytes-per-day", "1000"],
        &[],
    );
    assert_eq!(create_as(&origin, "vidQuota05", Some(alice), 1).status, 429);
    // An upload URL that names no wallet cannot be charged: refused.
    let r = create_as(&origin, "vidQuota06", None, 10);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["code"], "invalid_token");
    drop(origin);

    // A media store that would keep less than --min-free-bytes: 507 with Retry-After, which
    // tus clients treat as retryable, and nothing is created.
    let origin = Origin::start(
        dir.path(),
        &receiver.url(),
        &["--min-free-bytes", "1000000000000000000"],
        &[],
    );
    let r = create_as(&origin, "vidFull01", Some(bob), 10);
    assert_eq!(r.status, 507, "{r:?}");
    assert_eq!(r.json()["code"], "insufficient_storage");
    assert!(r.header("Retry-After").is_some());
    assert!(!dir.path().join("uploads/vidFull01").exists());
}

#[test]
fn abandoned_uploads_are_swept_after_their_url_expires() {
    let (dir, _receiver, origin) = origin_with(&[]);
    let abandoned = create(&origin, "vidAbandon01", 100);
    assert_eq!(patch(&origin, &abandoned, 0, &[1u8; 10]).status, 204);
    let done = create(&origin, "vidDone01", 10);
    assert_eq!(patch(&origin, &done, 0, &[1u8; 10]).status, 204);
    drop(origin);
    let day = Duration::from_secs(86_400);
    // Within the URL's lifetime nothing goes.
    assert_eq!(
        native_transcoder::tus::sweep(dir.path(), day, now()),
        (0, 0)
    );
    assert!(dir.path().join("uploads/vidAbandon01").exists());
    // A day later the incomplete one goes; the complete one stays.
    let (uploads, _) = native_transcoder::tus::sweep(dir.path(), day, now() + 86_400 + 60);
    assert_eq!(uploads, 1);
    assert!(!dir.path().join("uploads/vidAbandon01").exists());
    assert!(dir.path().join("uploads/vidDone01").exists());
    assert!(dir.path().join("sources/vidDone01").exists());
}

/// A client that paused (or whose connection died without a FIN) leaves its PATCH waiting for
/// bytes; when it comes back, its HEAD must not wait for that PATCH's body timeout (60 s here)
/// nor for the lock's 10 s: the stale PATCH gives way at once, keeping what it stored.
#[test]
fn a_stalled_patch_gives_way_to_the_resuming_client() {
    let (dir, receiver, origin) = origin_with(&["--body-idle-secs", "60"]);
    let video = "vidStalled01";
    let file: Vec<u8> = (0..400_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let location = create(&origin, video, file.len());

    // Announces the whole file, sends 150 000 bytes, then stops sending with the socket open.
    let mut stalled = std::net::TcpStream::connect(&origin.addr).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let req = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
         Content-Length: {}\r\n\r\n",
        origin.addr,
        file.len()
    );
    stalled.write_all(req.as_bytes()).unwrap();
    stalled.write_all(&file[..150_000]).unwrap();
    stalled.flush().unwrap();
    // Let the origin start on the body, so the PATCH holds the upload's lock.
    wait_until("the PATCH to store bytes", Duration::from_secs(10), || {
        std::fs::read_dir(dir.path().join("uploads").join(video))
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "part"))
            .and_then(|e| e.metadata().ok())
            .filter(|m| m.len() > 0)
    });

    let asked = std::time::Instant::now();
    let offset = head_offset(&origin, &location);
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the resume's HEAD waited {waited:?} for the stalled PATCH"
    );
    assert!(offset > 0 && offset <= 150_000, "offset {offset}");

    // The stalled client is told why its PATCH ended (if it still listens).
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stalled, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("upload_interrupted"), "{answer}");

    // The resumed client finishes from the server's offset, and the stored file is the file.
    let r = patch(&origin, &location, offset, &file[offset as usize..]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("Upload-Offset"), Some("400000"));
    let event = receiver.wait_for("upload.completed", video, Duration::from_secs(10));
    assert_eq!(event["data"]["size"], 400_000);
    assert_eq!(
        std::fs::read(dir.path().join("sources").join(video)).unwrap(),
        file,
        "the stored source is byte for byte the file"
    );
}
