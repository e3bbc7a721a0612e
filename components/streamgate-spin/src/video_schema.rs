//! The video tables, as versioned migrations (see [`crate::migrations`]). Written by the
//! metadata component, read by playback and playlists; each opens the database through
//! [`open`], so whichever runs first brings the schema up to date.

use spin_sdk::sqlite3::Connection;
use streamgate_core::api_error::ApiError;

use spin_sdk::sqlite3::Value;
use streamgate_core::video::{AudioTrack, GateRule, Rendition};

use crate::migrations::{AddColumn, Migration};

/// The migration scope of these tables.
pub const SCOPE: &str = "metadata";

pub fn open() -> Result<Connection, ApiError> {
    let db = open_unmigrated()?;
    crate::migrations::migrate(&db, SCOPE, MIGRATIONS)?;
    Ok(db)
}

fn open_unmigrated() -> Result<Connection, ApiError> {
    Connection::open_default().map_err(|e| {
        ApiError::new(
            503,
            "store_unavailable",
            format!("the video store did not open: {e:?}"),
        )
    })
}

pub fn read_error(e: impl std::fmt::Debug) -> ApiError {
    ApiError::new(
        503,
        "store_unavailable",
        format!("the video store failed: {e:?}"),
    )
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The video's current gate (see the versioned swap in the schema below).
pub fn gate_of(db: &Connection, id: &str) -> Result<Vec<GateRule>, ApiError> {
    let result = db
        .execute(
            "SELECT g.rule AS rule FROM gate_rules g JOIN videos v
               ON v.id = g.video_id AND g.version = v.gate_version
             WHERE v.id = ? ORDER BY g.position",
            &[text(id)],
        )
        .map_err(read_error)?;
    result
        .rows()
        .map(|row| {
            serde_json::from_str(row.get::<&str>("rule").unwrap_or_default())
                .map_err(|e| read_error(format!("stored gate rule unreadable: {e}")))
        })
        .collect()
}

/// The statement behind [`tracks_of`] and [`ready_tracks`]: the video's status (from the first
/// half, which yields one row even without renditions), then its renditions in ladder order and
/// its audio tracks in order. Two halves rather than a join over a union, so each reads its
/// table by primary key.
const TRACKS: &str = "SELECT v.status AS status, 'video' AS kind, r.position AS position,
        r.rendition AS track
     FROM videos v LEFT JOIN renditions r ON r.video_id = v.id WHERE v.id = ?
     UNION ALL
     SELECT NULL, 'audio', a.position, a.track FROM audio_tracks a WHERE a.video_id = ?
     ORDER BY kind DESC, position";

/// The video's status (`None`: no such video) and tracks.
type StatusAndTracks = (Option<String>, Vec<Rendition>, Vec<AudioTrack>);

fn read_tracks(result: &spin_sdk::sqlite3::QueryResult) -> Result<StatusAndTracks, ApiError> {
    let mut status = None;
    let mut renditions = Vec::new();
    let mut audio = Vec::new();
    let unreadable = |e: serde_json::Error| read_error(format!("stored track unreadable: {e}"));
    for row in result.rows() {
        if let Some(s) = row.get::<&str>("status") {
            status = Some(s.to_string());
        }
        // NULL for a video without renditions (the LEFT JOIN's row).
        let Some(json) = row.get::<&str>("track") else {
            continue;
        };
        if row.get::<&str>("kind") == Some("audio") {
            audio.push(serde_json::from_str(json).map_err(unreadable)?);
        } else {
            renditions.push(serde_json::from_str(json).map_err(unreadable)?);
        }
    }
    Ok((status, renditions, audio))
}

/// A video's tracks as the playlists render them: the renditions in ladder order and the
/// separate audio tracks (none for a video transcoded before audio was split out, or one
/// without sound).
pub fn tracks_of(db: &Connection, id: &str) -> Result<(Vec<Rendition>, Vec<AudioTrack>), ApiError> {
    let result = db
        .execute(TRACKS, &[text(id), text(id)])
        .map_err(read_error)?;
    let (_, renditions, audio) = read_tracks(&result)?;
    Ok((renditions, audio))
}

/// One statement of the playlist routes' hot reads ([`ready_tracks`], [`ready_template`]) on a
/// database opened without the per-request migration check: only when the statement fails (a
/// database older than this code, a missing table) is the schema brought up to date and the
/// statement run again.
fn hot_read(sql: &str, params: &[Value]) -> Result<spin_sdk::sqlite3::QueryResult, ApiError> {
    let db = open_unmigrated()?;
    match db.execute(sql, params) {
        Ok(result) => Ok(result),
        Err(_) => {
            crate::migrations::migrate(&db, SCOPE, MIGRATIONS)?;
            db.execute(sql, params).map_err(read_error)
        }
    }
}

/// For the playlist routes, the hottest reads: 404 for an unknown video, 409 `not_ready` until
/// it is ready, else its tracks; one statement in the common case, without the per-request
/// migration check [`open`] makes ([`hot_read`]).
pub fn ready_tracks(id: &str) -> Result<(Vec<Rendition>, Vec<AudioTrack>), ApiError> {
    let result = hot_read(TRACKS, &[text(id), text(id)])?;
    let (status, renditions, audio) = read_tracks(&result)?;
    let status = status.ok_or_else(|| ApiError::not_found(format!("no video `{id}`")))?;
    not_ready_unless_ready(&status)?;
    Ok((renditions, audio))
}

/// A kept playlist and the length its viewing token is renewed for.
pub struct KeptPlaylist {
    pub duration: f64,
    pub body: String,
}

const TEMPLATE: &str = "SELECT v.status AS status, p.duration AS duration, p.body AS body
     FROM videos v LEFT JOIN playlist_templates p ON p.video_id = v.id AND p.file = ?
     WHERE v.id = ?";

/// Like [`ready_tracks`] (404, 409 `not_ready`, one statement), but the kept playlist `file`
/// instead of the tracks: `None` when the video has none of that name (stored before templates,
/// or no such track), and then the caller renders from [`ready_tracks`].
pub fn ready_template(id: &str, file: &str) -> Result<Option<KeptPlaylist>, ApiError> {
    let result = hot_read(TEMPLATE, &[text(file), text(id)])?;
    let row = result
        .rows()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no video `{id}`")))?;
    not_ready_unless_ready(row.get::<&str>("status").unwrap_or_default())?;
    Ok(row.get::<&str>("body").map(|body| KeptPlaylist {
        duration: row.get::<f64>("duration").unwrap_or_default(),
        body: body.to_string(),
    }))
}

/// What playback and the playlists need of a video.
pub struct PlayableVideo {
    pub owner: String,
    pub status: String,
    pub gate: Vec<GateRule>,
}

/// The video's owner and status, or 404.
fn owner_and_status(db: &Connection, id: &str) -> Result<(String, String), ApiError> {
    let result = db
        .execute("SELECT owner, status FROM videos WHERE id = ?", &[text(id)])
        .map_err(read_error)?;
    let (owner, status) = result
        .rows()
        .next()
        .map(|row| {
            (
                row.get::<&str>("owner").unwrap_or_default().to_string(),
                row.get::<&str>("status").unwrap_or_default().to_string(),
            )
        })
        .ok_or_else(|| ApiError::not_found(format!("no video `{id}`")))?;
    Ok((owner, status))
}

/// The video's owner, status and gate, or 404.
pub fn playable(db: &Connection, id: &str) -> Result<PlayableVideo, ApiError> {
    let (owner, status) = owner_and_status(db, id)?;
    Ok(PlayableVideo {
        owner,
        status,
        gate: gate_of(db, id)?,
    })
}

fn not_ready_unless_ready(status: &str) -> Result<(), ApiError> {
    if status != streamgate_core::video::VideoStatus::Ready.as_str() {
        return Err(ApiError::new(
            409,
            "not_ready",
            format!("the video is `{status}`, not ready to play"),
        ));
    }
    Ok(())
}

/// The video if it can be played now: 404 if unknown; until it is `ready`, 409 `not_ready`
/// to its owner and, to anyone else, the same 404 as an unknown id (a video that is not ready
/// is its owner's alone: docs/api.md, "Who sees what").
pub fn ready_to_play(
    db: &Connection,
    id: &str,
    viewer: &streamgate_core::rpc::Address,
) -> Result<PlayableVideo, ApiError> {
    let video = playable(db, id)?;
    if video.status != streamgate_core::video::VideoStatus::Ready.as_str()
        && !video.owner.eq_ignore_ascii_case(&viewer.to_checksum(None))
    {
        return Err(ApiError::not_found(format!("no video `{id}`")));
    }
    not_ready_unless_ready(&video.status)?;
    Ok(video)
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    add_columns: &[],
    statements: &[
        "CREATE TABLE IF NOT EXISTS videos (
            id          TEXT PRIMARY KEY,
            owner       TEXT NOT NULL,
            title       TEXT NOT NULL,
            description TEXT,
            status      TEXT NOT NULL,
            error       TEXT,
            progress    INTEGER,
            source      TEXT,
            poster      TEXT,
            duration    REAL,
            gate_version INTEGER NOT NULL DEFAULT 0,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS videos_by_created ON videos (created_at DESC, id DESC)",
        "CREATE INDEX IF NOT EXISTS videos_by_owner ON videos (owner, created_at DESC, id DESC)",
        // A gate is replaced by writing the new version's rules, then switching
        // videos.gate_version in one statement: a reader never sees a half-written (and so
        // possibly empty, i.e. public) gate.
        "CREATE TABLE IF NOT EXISTS gate_rules (
            video_id TEXT NOT NULL,
            version  INTEGER NOT NULL,
            position INTEGER NOT NULL,
            rule     TEXT NOT NULL,
            PRIMARY KEY (video_id, version, position)
        )",
        "CREATE TABLE IF NOT EXISTS renditions (
            video_id  TEXT NOT NULL,
            position  INTEGER NOT NULL,
            name      TEXT NOT NULL,
            rendition TEXT NOT NULL,
            PRIMARY KEY (video_id, position)
        )",
        "CREATE TABLE IF NOT EXISTS jobs (
            video_id    TEXT NOT NULL,
            stream_id   TEXT NOT NULL,
            action      TEXT NOT NULL,
            enqueued_at INTEGER NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS applied_events (
            id          TEXT PRIMARY KEY,
            video_id    TEXT NOT NULL,
            type        TEXT NOT NULL,
            received_at INTEGER NOT NULL
        )",
    ],
}, Migration {
    version: 2,
    add_columns: &[],
    statements: &[
        // Audio as its own CMAF track, shared by the renditions (docs/pipeline.md).
        "CREATE TABLE IF NOT EXISTS audio_tracks (
            video_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            name     TEXT NOT NULL,
            track    TEXT NOT NULL,
            PRIMARY KEY (video_id, position)
        )",
    ],
}, Migration {
    version: 3,
    // A failed video's reason as a fixed code (`error` stays the owner's sentence).
    add_columns: &[AddColumn {
        table: "videos",
        column: "error_code",
        definition: "TEXT",
    }],
    statements: &[
        // Videos that failed before codes existed.
        "UPDATE videos SET error_code = 'transcode_failed'
         WHERE status = 'failed' AND error_code IS NULL",
        // The public list reads ready videos only, newest first.
        "CREATE INDEX IF NOT EXISTS videos_by_status ON videos (status, created_at DESC, id DESC)",
    ],
}, Migration {
    version: 4,
    add_columns: &[],
    statements: &[
        // Jobs decided by an event's transaction and handed to the queue after its commit, so
        // no SQL waits on the queue (components/metadata/src/events.rs). `claimed_until`: a
        // request is handing the row to the queue until then.
        "CREATE TABLE IF NOT EXISTS job_outbox (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id      TEXT NOT NULL,
            action        TEXT NOT NULL,
            source        TEXT NOT NULL,
            created_at    INTEGER NOT NULL,
            claimed_until INTEGER
        )",
        "CREATE INDEX IF NOT EXISTS job_outbox_by_video ON job_outbox (video_id, id)",
    ],
}, Migration {
    version: 5,
    add_columns: &[],
    statements: &[
        // Each playlist of a video rendered once with marks for the media base and the token
        // (streamgate_core::playlist::template), replaced in the same transaction as the
        // tracks it was rendered from, so a reader sees both old or both new. `duration` is
        // what the viewing token is renewed for. Videos stored before this have no rows here
        // and are rendered per request; nothing else writes these rows (a reader filling a
        // missing one could write a ladder that was replaced meanwhile).
        "CREATE TABLE IF NOT EXISTS playlist_templates (
            video_id TEXT NOT NULL,
            file     TEXT NOT NULL,
            duration REAL NOT NULL,
            body     TEXT NOT NULL,
            PRIMARY KEY (video_id, file)
        )",
    ],
}];
