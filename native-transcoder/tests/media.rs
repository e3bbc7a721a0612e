//! The media origin (`/media/<video>/…`) against a raw HTTP client, with real files on disk laid
//! out as the worker publishes them, and tokens signed as the playback component signs them.

mod common;

use std::path::Path;

use common::{now, Origin, Reply};
use streamgate_core::{edge_token, keys};

const PLAYBACK: &str = "test-playback-secret-0123456789abcdef";
const OLD_PLAYBACK: &str = "old-playback-secret-0123456789abcdef";
const VIDEO: &str = "vidMedia01";
const OTHER: &str = "vidMedia02";

/// One request on a fresh connection, no body.
fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    common::http(addr, method, target, headers, b"")
}

fn get(origin: &Origin, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(&origin.addr, "GET", target, headers)
}

/// A token as the playback component makes it (acl for the stream and the media of one video,
/// the viewer in `data`), signed with the raw bytes of `secret`.
fn token_for(video: &str, secret: &str, start: i64, expires: i64) -> String {
    edge_token::sign(
        &edge_token::EdgeToken {
            start,
            expires,
            acl: vec![format!("/stream/{video}/*"), format!("/media/{video}/*")],
            data: Some("0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into()),
        },
        secret.as_bytes(),
    )
}

fn token(video: &str) -> String {
    token_for(video, PLAYBACK, now() - 10, now() + 300)
}

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

struct Files {
    init: Vec<u8>,
    segment: Vec<u8>,
    poster: Vec<u8>,
}

/// `media/<video>/` as the worker publishes it, an unpublished work directory, a video whose
/// ladder is incomplete, and secrets outside the media tree that must never come out.
fn lay_out(media_dir: &Path) -> Files {
    let media = media_dir.join("media");
    let files = Files {
        init: pattern(1_234, 1),
        // Several 64 KiB reads, and not a multiple of them.
        segment: pattern(300_001, 2),
        poster: pattern(20_000, 3),
    };
    for (video, marker) in [(VIDEO, true), (OTHER, true), ("vidIncomplete", false)] {
        let dir = media.join(video);
        std::fs::create_dir_all(dir.join("720p")).unwrap();
        std::fs::write(dir.join("720p/init.mp4"), &files.init).unwrap();
        std::fs::write(dir.join("720p/seg_00001.m4s"), &files.segment).unwrap();
        std::fs::write(dir.join("poster.jpg"), &files.poster).unwrap();
        std::fs::write(dir.join("720p/empty.m4s"), b"").unwrap();
        if marker {
            std::fs::write(dir.join("ladder.json"), b"{\"renditions\": []}").unwrap();
        }
    }
    let tmp = media.join(format!(".tmp-{VIDEO}-abcdef"));
    std::fs::create_dir_all(tmp.join("720p")).unwrap();
    std::fs::write(tmp.join("720p/seg_00001.m4s"), b"half-written").unwrap();
    std::fs::write(media_dir.join("secret.m4s"), b"TOP SECRET OUTSIDE").unwrap();
    std::fs::write(media.join("secret.m4s"), b"TOP SECRET IN MEDIA ROOT").unwrap();
    std::os::unix::fs::symlink(
        media_dir.join("secret.m4s"),
        media.join(VIDEO).join("720p/escape.m4s"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", media.join(VIDEO).join("etc")).unwrap();
    files
}

fn start(media_dir: &Path, current: &str, previous: &str) -> Origin {
    Origin::start(
        media_dir,
        "http://127.0.0.1:9/internal/v1/events",
        &[],
        &[
            ("STREAMGATE_PLAYBACK_SECRET", current),
            ("STREAMGATE_PLAYBACK_SECRET_PREVIOUS", previous),
        ],
    )
}

const IMMUTABLE: &str = "private, max-age=31536000, immutable";

fn assert_refused(r: &Reply, code: &str) {
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
}

#[test]
fn a_valid_token_serves_the_files_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = lay_out(dir.path());
    let origin = start(dir.path(), PLAYBACK, "");
    let t = token(VIDEO);

    for (path, bytes, mime, cache) in [
        ("720p/init.mp4", &files.init, "video/mp4", IMMUTABLE),
        (
            "720p/seg_00001.m4s",
            &files.segment,
            "video/iso.segment",
            IMMUTABLE,
        ),
        (
            "poster.jpg",
            &files.poster,
            "image/jpeg",
            "private, max-age=3600",
        ),
    ] {
        let target = format!("/media/{VIDEO}/{path}?hdnts={t}");
        let r = get(&origin, &target, &[("Origin", "http://app.test")]);
        assert_eq!(r.status, 200, "{path}: {:?}", r.header("Content-Type"));
        assert!(r.body == *bytes, "{path}: the bytes differ from the file");
        assert_eq!(r.header("Content-Type"), Some(mime));
        assert_eq!(r.header("Content-Length"), Some(&*bytes.len().to_string()));
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        assert_eq!(r.header("Cache-Control"), Some(cache));
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
        let exposed = r.header("Access-Control-Expose-Headers").unwrap();
        for h in ["Content-Length", "Content-Range", "Accept-Ranges"] {
            assert!(exposed.contains(h), "{exposed}");
        }

        // HEAD: the same headers, no body.
        let h = request(&origin.addr, "HEAD", &target, &[]);
        assert_eq!(h.status, 200);
        assert_eq!(h.header("Content-Length"), Some(&*bytes.len().to_string()));
        assert_eq!(h.header("Content-Type"), Some(mime));
        assert_eq!(h.header("ETag"), r.header("ETag"));

        // Revalidation.
        let etag = r.header("ETag").unwrap();
        let again = get(&origin, &target, &[("If-None-Match", etag)]);
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
    }

    // The token percent-encoded in the query (as some players and URL builders write it), and
    // among other parameters.
    let encoded = t
        .replace('~', "%7E")
        .replace('=', "%3D")
        .replace('*', "%2A")
        .replace('!', "%21")
        .replace('/', "%2F");
    let r = get(
        &origin,
        &format!("/media/{VIDEO}/poster.jpg?x=1&hdnts={encoded}&y=2"),
        &[],
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert!(r.body == files.poster);

    // An empty file is served as an empty 200.
    let r = get(
        &origin,
        &format!("/media/{VIDEO}/720p/empty.m4s?hdnts={t}"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("0"));
}

#[test]
fn range_requests() {
    let dir = tempfile::tempdir().unwrap();
    let files = lay_out(dir.path());
    let origin = start(dir.path(), PLAYBACK, "");
    let target = format!("/media/{VIDEO}/720p/seg_00001.m4s?hdnts={}", token(VIDEO));
    let seg = &files.segment;
    let len = seg.len();

    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=100000-200000", 100_000, 200_000),
        ("bytes=299990-", 299_990, len - 1),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=5-999999999", 5, len - 1),
    ] {
        let r = get(&origin, &target, &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(&*format!("bytes {from}-{to}/{len}")),
            "{range}"
        );
        assert_eq!(
            r.header("Content-Length"),
            Some(&*(to - from + 1).to_string())
        );
        assert!(r.body == seg[from..=to], "{range}: wrong bytes");
        assert_eq!(r.header("Content-Type"), Some("video/iso.segment"));
    }

    for range in [&*format!("bytes={len}-"), "bytes=999999999-", "bytes=-0"] {
        let r = get(&origin, &target, &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("Content-Range"), Some(&*format!("bytes */{len}")));
        assert_eq!(r.json()["code"], "range_not_satisfiable");
    }

    // Several ranges, or a range we do not understand: the whole file (RFC 9110 allows it).
    for range in ["bytes=0-1,5-6", "bytes=9-3", "pages=1-2"] {
        let r = get(&origin, &target, &[("Range", range)]);
        assert_eq!(r.status, 200, "{range}");
        assert!(r.body == *seg);
    }

    // If-Range: a current validator keeps the range, a stale one gets the whole file.
    let etag = get(&origin, &target, &[])
        .header("ETag")
        .unwrap()
        .to_string();
    let r = get(
        &origin,
        &target,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
    );
    assert_eq!(r.status, 206);
    let r = get(
        &origin,
        &target,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), len);

    // A range on a HEAD describes the part.
    let h = request(&origin.addr, "HEAD", &target, &[("Range", "bytes=0-9")]);
    assert_eq!(h.status, 206);
    assert_eq!(h.header("Content-Length"), Some("10"));
}

#[test]
fn missing_tampered_expired_and_other_video_tokens_get_403() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let origin = start(dir.path(), PLAYBACK, "");
    let path = format!("/media/{VIDEO}/720p/seg_00001.m4s");

    assert_refused(&get(&origin, &path, &[]), "missing_token");
    assert_refused(
        &get(&origin, &format!("{path}?hdnts="), &[]),
        "missing_token",
    );
    assert_refused(
        &get(&origin, &format!("{path}?token={}", token(VIDEO)), &[]),
        "missing_token",
    );

    // Tampered: a later expiry, another video in the ACL, a flipped HMAC digit, garbage.
    let t = token(VIDEO);
    let exp = t.split('~').nth(1).unwrap().to_string();
    let longer = t.replace(&exp, &format!("exp={}", now() + 86_400));
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={longer}"), &[]),
        "invalid_token",
    );
    let widened = t.replace(&format!("/media/{VIDEO}/*"), "/media/*");
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={widened}"), &[]),
        "invalid_token",
    );
    let mut flipped = t.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={flipped}"), &[]),
        "invalid_token",
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts=garbage"), &[]),
        "invalid_token",
    );

    // Signed with the wrong key: the events secret, or a key derived from it.
    let events_key = keys::derive(PLAYBACK, "events");
    let wrong = edge_token::sign(
        &edge_token::EdgeToken {
            start: now() - 10,
            expires: now() + 300,
            acl: vec![format!("/media/{VIDEO}/*")],
            data: None,
        },
        &events_key,
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={wrong}"), &[]),
        "invalid_token",
    );
    let other_secret = token_for(
        VIDEO,
        "some-other-secret-0123456789abcdef",
        now() - 10,
        now() + 300,
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={other_secret}"), &[]),
        "invalid_token",
    );

    // Expired, and not yet valid (beyond the default 30 s clock-skew leeway).
    let expired = token_for(VIDEO, PLAYBACK, now() - 600, now() - 31);
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={expired}"), &[]),
        "token_expired",
    );
    let future = token_for(VIDEO, PLAYBACK, now() + 600, now() + 900);
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={future}"), &[]),
        "token_not_yet_valid",
    );

    // Another video's genuine token, and a token whose ACL is a prefix of this id.
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={}", token(OTHER)), &[]),
        "token_wrong_path",
    );
    let prefix = edge_token::sign(
        &edge_token::EdgeToken {
            start: now() - 10,
            expires: now() + 300,
            acl: vec!["/media/vidMedia0*".into()],
            data: None,
        },
        PLAYBACK.as_bytes(),
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={prefix}"), &[]),
        "token_wrong_path",
    );
    // The playlist-only half of an ACL does not open media.
    let stream_only = edge_token::sign(
        &edge_token::EdgeToken {
            start: now() - 10,
            expires: now() + 300,
            acl: vec![format!("/stream/{VIDEO}/*")],
            data: None,
        },
        PLAYBACK.as_bytes(),
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={stream_only}"), &[]),
        "token_wrong_path",
    );

    // A refusal is never cached.
    let r = get(&origin, &path, &[]);
    assert_eq!(r.header("Cache-Control"), Some("no-store"));

    // The same token still works where it belongs.
    assert_eq!(get(&origin, &format!("{path}?hdnts={t}"), &[]).status, 200);
}

#[test]
fn tokens_are_accepted_within_the_clock_skew_leeway_and_not_beyond() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let path = format!("/media/{VIDEO}/poster.jpg");
    // Signed by an app whose clock is a little ahead of (or behind) the origin's.
    let just_expired = token_for(VIDEO, PLAYBACK, now() - 300, now() - 5);
    let about_to_start = token_for(VIDEO, PLAYBACK, now() + 5, now() + 300);
    let long_expired = token_for(VIDEO, PLAYBACK, now() - 300, now() - 40);
    let far_future = token_for(VIDEO, PLAYBACK, now() + 40, now() + 300);

    // The default leeway: 30 s either side.
    let origin = start(dir.path(), PLAYBACK, "");
    for t in [&just_expired, &about_to_start] {
        let r = get(&origin, &format!("{path}?hdnts={t}"), &[]);
        assert_eq!(r.status, 200, "{t}: {r:?}");
    }
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={long_expired}"), &[]),
        "token_expired",
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={far_future}"), &[]),
        "token_not_yet_valid",
    );
    drop(origin);

    // Configured: none (the flag; the environment variable is the same setting).
    let origin = Origin::start(
        dir.path(),
        "http://127.0.0.1:9/internal/v1/events",
        &["--token-leeway-secs", "0"],
        &[("STREAMGATE_PLAYBACK_SECRET", PLAYBACK)],
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={just_expired}"), &[]),
        "token_expired",
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={about_to_start}"), &[]),
        "token_not_yet_valid",
    );
    drop(origin);
    let origin = Origin::start(
        dir.path(),
        "http://127.0.0.1:9/internal/v1/events",
        &[],
        &[
            ("STREAMGATE_PLAYBACK_SECRET", PLAYBACK),
            ("STREAMGATE_TOKEN_LEEWAY_SECS", "60"),
        ],
    );
    for t in [&long_expired, &far_future] {
        let r = get(&origin, &format!("{path}?hdnts={t}"), &[]);
        assert_eq!(r.status, 200, "{t}: {r:?}");
    }
}

#[test]
fn key_rotation_accepts_the_previous_secret() {
    let dir = tempfile::tempdir().unwrap();
    let files = lay_out(dir.path());
    let path = format!("/media/{VIDEO}/poster.jpg");
    let old = token_for(VIDEO, OLD_PLAYBACK, now() - 10, now() + 300);
    let new = token(VIDEO);

    // Before the rotation: only the old secret.
    let origin = start(dir.path(), OLD_PLAYBACK, "");
    assert_eq!(
        get(&origin, &format!("{path}?hdnts={old}"), &[]).status,
        200
    );
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={new}"), &[]),
        "invalid_token",
    );
    drop(origin);

    // During: new current, old previous; tokens of both work.
    let origin = start(dir.path(), PLAYBACK, OLD_PLAYBACK);
    for t in [&old, &new] {
        let r = get(&origin, &format!("{path}?hdnts={t}"), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == files.poster);
    }
    drop(origin);

    // After: the previous secret is dropped and its tokens stop working.
    let origin = start(dir.path(), PLAYBACK, "");
    assert_refused(
        &get(&origin, &format!("{path}?hdnts={old}"), &[]),
        "invalid_token",
    );
    assert_eq!(
        get(&origin, &format!("{path}?hdnts={new}"), &[]).status,
        200
    );
}

#[test]
fn traversal_and_unpublished_files_are_never_served() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let origin = start(dir.path(), PLAYBACK, "");
    let t = token(VIDEO);

    let attempts = [
        format!("/media/{VIDEO}/../secret.m4s"),
        format!("/media/{VIDEO}/../../secret.m4s"),
        format!("/media/{VIDEO}/720p/../../{OTHER}/poster.jpg"),
        format!("/media/{VIDEO}/%2e%2e/secret.m4s"),
        format!("/media/{VIDEO}/%2E%2E/%2E%2E/secret.m4s"),
        format!("/media/{VIDEO}/%2e%2e%2fsecret.m4s"),
        format!("/media/{VIDEO}/..%2f..%2fsecret.m4s"),
        format!("/media/{VIDEO}/%2e%2e%5csecret.m4s"),
        format!("/media/{VIDEO}/..%5c..%5csecret.m4s"),
        format!("/media/{VIDEO}/720p%2f..%2f..%2fsecret.m4s"),
        format!("/media/{VIDEO}/%252e%252e/secret.m4s"),
        format!("/media/{VIDEO}//etc/passwd"),
        format!("/media/{VIDEO}/%2fetc%2fpasswd"),
        format!("/media/{VIDEO}/etc/passwd"),
        format!("/media/{VIDEO}/etc/hostname"),
        format!("/media/{VIDEO}/poster.jpg%00"),
        format!("/media/{VIDEO}/secret.m4s%00.jpg"),
        format!("/media/{VIDEO}/./poster.jpg"),
        format!("/media/{VIDEO}/720p/escape.m4s"),
        format!("/media/{VIDEO}/ladder.json"),
        format!("/media/{VIDEO}/720p"),
        format!("/media/{VIDEO}/720p/"),
        format!("/media/{VIDEO}/720p/seg_99999.m4s"),
        format!("/media/{VIDEO}/nothing.jpg"),
        format!("/media/{VIDEO}"),
        format!("/media/{VIDEO}/"),
        "/media/../secret.m4s".to_string(),
        "/media/secret.m4s".to_string(),
        "/media/%2e%2e/secret.m4s".to_string(),
        format!("/media/.tmp-{VIDEO}-abcdef/720p/seg_00001.m4s"),
        "/media/vidIncomplete/720p/seg_00001.m4s".to_string(),
        "/media/vidIncomplete/poster.jpg".to_string(),
    ];
    for path in &attempts {
        let r = get(&origin, &format!("{path}?hdnts={t}"), &[]);
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{path}: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !r.body.windows(10).any(|w| w == b"TOP SECRET")
                && !r.body.windows(5).any(|w| w == b"root:")
                && !r.body.windows(4).any(|w| w == b"half"),
            "{path} leaked a file"
        );
        if r.status != 403 {
            let body = r.json();
            assert!(body["code"].is_string(), "{path}: {body}");
        }
    }

    // The unpublished ones are refused even with their own video's token.
    for (video, path) in [
        ("vidIncomplete", "/media/vidIncomplete/poster.jpg"),
        (VIDEO, "/media/vidMedia01/720p/escape.m4s"),
    ] {
        let r = get(&origin, &format!("{path}?hdnts={}", token(video)), &[]);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["code"], "not_found");
    }
    // A backslash in the raw request line.
    let r = get(
        &origin,
        &format!("/media/{VIDEO}/..\\..\\secret.m4s?hdnts={t}"),
        &[],
    );
    assert!(matches!(r.status, 400 | 404), "{r:?}");

    // Absolute-form request target: the path is what counts.
    let r = get(
        &origin,
        &format!(
            "http://{}/media/{VIDEO}/%2e%2e/secret.m4s?hdnts={t}",
            origin.addr
        ),
        &[],
    );
    assert!(matches!(r.status, 400 | 404), "{r:?}");
}

#[test]
fn cors_preflight_methods_and_missing_configuration() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let origin = start(dir.path(), PLAYBACK, "");
    let path = format!("/media/{VIDEO}/720p/seg_00001.m4s");

    let r = request(
        &origin.addr,
        "OPTIONS",
        &path,
        &[
            ("Origin", "http://app.test"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("GET"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Range"));

    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = request(
            &origin.addr,
            method,
            &format!("{path}?hdnts={}", token(VIDEO)),
            &[],
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.json()["code"], "method_not_allowed");
        assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"), "{method}");
    }
    drop(origin);

    // No playback secret configured: media is refused (503), never served unchecked, and the
    // upload side still starts.
    let origin = start(dir.path(), "", "");
    let r = get(&origin, &format!("{path}?hdnts={}", token(VIDEO)), &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["code"], "server_misconfigured");
}

/// `/posters/<video>.jpg` is public (no token) and opens a published video's poster and nothing
/// else: no segment, playlist, init, ladder or other file, no traversal, nothing unpublished or
/// deleted, and `/media/…` still wants its token.
#[test]
fn the_public_poster_is_the_only_file_served_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let files = lay_out(dir.path());
    std::fs::write(
        dir.path().join("media").join(VIDEO).join("index.m3u8"),
        b"#EXTM3U",
    )
    .unwrap();
    let origin = start(dir.path(), PLAYBACK, "");

    for video in [VIDEO, OTHER] {
        let r = get(&origin, &format!("/posters/{video}.jpg"), &[]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, files.poster);
        assert_eq!(r.header("Content-Type"), Some("image/jpeg"));
        assert_eq!(r.header("Cache-Control"), Some("public, max-age=3600"));
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    }
    let head = request(&origin.addr, "HEAD", &format!("/posters/{VIDEO}.jpg"), &[]);
    assert_eq!(head.status, 200);

    let attempts = [
        format!("/posters/{VIDEO}"),
        format!("/posters/{VIDEO}.jpeg"),
        format!("/posters/{VIDEO}.m4s"),
        format!("/posters/{VIDEO}/poster.jpg"),
        format!("/posters/{VIDEO}/720p/seg_00001.m4s"),
        format!("/posters/{VIDEO}/720p/init.mp4"),
        format!("/posters/{VIDEO}/index.m3u8"),
        format!("/posters/{VIDEO}/ladder.json"),
        format!("/posters/{VIDEO}/../secret.m4s"),
        format!("/posters/{VIDEO}%2f720p%2fseg_00001.m4s"),
        format!("/posters/{VIDEO}%2fposter.jpg"),
        format!("/posters/..%2f{VIDEO}.jpg"),
        "/posters/%2e%2e%2fsecret.m4s".to_string(),
        "/posters/../secret.m4s".to_string(),
        "/posters/..%2fsecret.jpg".to_string(),
        "/posters/secret.jpg".to_string(),
        "/posters/.jpg".to_string(),
        "/posters/".to_string(),
        "/posters".to_string(),
        format!("/posters/.tmp-{VIDEO}-abcdef.jpg"),
        "/posters/vidIncomplete.jpg".to_string(),
        format!("/posters/{VIDEO}.jpg%00"),
        format!("/media/{VIDEO}/poster.jpg"),
        format!("/media/{VIDEO}/720p/seg_00001.m4s"),
        format!("/media/{VIDEO}/index.m3u8"),
    ];
    for path in &attempts {
        let r = get(&origin, path, &[]);
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{path}: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_ne!(r.body, files.poster, "{path} served the poster");
        assert!(
            r.body != files.segment
                && r.body != files.init
                && !r.body.windows(10).any(|w| w == b"TOP SECRET")
                && !r.body.windows(7).any(|w| w == b"#EXTM3U"),
            "{path} leaked a file"
        );
        assert!(r.json()["code"].is_string(), "{path}: {r:?}");
    }
    // A symlinked poster that leaves the video's directory is not followed.
    let other = dir.path().join("media").join(OTHER);
    std::fs::remove_file(other.join("poster.jpg")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.m4s"), other.join("poster.jpg")).unwrap();
    assert_eq!(
        get(&origin, &format!("/posters/{OTHER}.jpg"), &[]).status,
        404
    );

    // A deleted video's poster is gone at once (its tombstone), even before its files are.
    std::fs::write(dir.path().join("deleted").join(VIDEO), b"1").unwrap();
    let r = get(&origin, &format!("/posters/{VIDEO}.jpg"), &[]);
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn segments_are_immutable_and_revalidate_only_with_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let playlist = dir.path().join("media").join(VIDEO).join("720p/index.m3u8");
    std::fs::write(&playlist, b"#EXTM3U\n").unwrap();
    let origin = start(dir.path(), PLAYBACK, "");
    let path = format!("/media/{VIDEO}/720p/seg_00001.m4s");
    let target = format!("{path}?hdnts={}", token(VIDEO));

    let r = get(&origin, &target, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some(IMMUTABLE));
    let etag = r.header("ETag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "not a strong ETag: {etag}"
    );
    let last_modified = r.header("Last-Modified").unwrap().to_string();
    let mtime = std::fs::metadata(
        dir.path()
            .join("media")
            .join(VIDEO)
            .join("720p/seg_00001.m4s"),
    )
    .unwrap()
    .modified()
    .unwrap();
    assert_eq!(last_modified, httpdate::fmt_http_date(mtime));
    let exposed = r.header("Access-Control-Expose-Headers").unwrap();
    assert!(exposed.contains("ETag"), "{exposed}");

    // A playlist, if a ladder holds one, is always revalidated.
    let m3u8 = get(
        &origin,
        &format!("/media/{VIDEO}/720p/index.m3u8?hdnts={}", token(VIDEO)),
        &[],
    );
    assert_eq!(m3u8.status, 200);
    assert_eq!(m3u8.header("Cache-Control"), Some("private, no-cache"));

    // Revalidation with the right token: 304, no body, the validators again.
    for conditional in [
        ("If-None-Match", etag.as_str()),
        ("If-None-Match", &*format!("\"other\", {etag}")),
        ("If-Modified-Since", last_modified.as_str()),
        ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ] {
        let again = get(&origin, &target, &[conditional]);
        assert_eq!(again.status, 304, "{conditional:?}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("ETag"), Some(etag.as_str()));
        assert_eq!(again.header("Cache-Control"), Some(IMMUTABLE));
    }
    // A validator that does not match: the file. If-None-Match wins over If-Modified-Since.
    for conditional in [
        vec![("If-None-Match", "\"other\"")],
        vec![("If-Modified-Since", "Thu, 01 Jan 1970 00:00:01 GMT")],
        vec![
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", last_modified.as_str()),
        ],
    ] {
        let r = get(&origin, &target, &conditional);
        assert_eq!(r.status, 200, "{conditional:?}");
        assert_eq!(r.body.len(), 300_001);
    }

    // A matching validator never turns a refused token into a 304.
    let expired = token_for(VIDEO, PLAYBACK, now() - 600, now() - 300);
    let mut tampered = token(VIDEO);
    tampered.replace_range(tampered.len() - 4.., "0000");
    for (query, code) in [
        (String::new(), "missing_token"),
        (format!("?hdnts={expired}"), "token_expired"),
        (format!("?hdnts={tampered}"), "invalid_token"),
        (format!("?hdnts={}", token(OTHER)), "token_wrong_path"),
    ] {
        for conditional in [
            ("If-None-Match", etag.as_str()),
            ("If-None-Match", "*"),
            ("If-Modified-Since", last_modified.as_str()),
        ] {
            let r = get(&origin, &format!("{path}{query}"), &[conditional]);
            assert_refused(&r, code);
            assert_eq!(r.header("Cache-Control"), Some("no-store"));
            assert_eq!(r.header("ETag"), None, "{code} {conditional:?}");
        }
    }
}

#[test]
fn a_large_segment_streams_whole_and_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    // 24 MiB + 7: hundreds of reads, the last one short.
    let big = pattern(24 * 1024 * 1024 + 7, 9);
    std::fs::write(
        dir.path()
            .join("media")
            .join(VIDEO)
            .join("720p/seg_00002.m4s"),
        &big,
    )
    .unwrap();
    let origin = start(dir.path(), PLAYBACK, "");
    let target = format!("/media/{VIDEO}/720p/seg_00002.m4s?hdnts={}", token(VIDEO));

    let r = get(&origin, &target, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some(&*big.len().to_string()));
    assert!(r.body == big, "the streamed body differs from the file");

    let (from, to) = (5 * 1024 * 1024 + 3, 17 * 1024 * 1024 + 11);
    let r = get(
        &origin,
        &target,
        &[("Range", &format!("bytes={from}-{to}"))],
    );
    assert_eq!(r.status, 206);
    assert!(r.body == big[from..=to], "the range differs from the file");
}
