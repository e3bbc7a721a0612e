//! The metadata tables: every read and write the routes make, one SQL statement at a time (an
//! event's statements in one transaction: [`in_transaction`]).

use serde::Serialize;
use spin_sdk::sqlite3::{Connection, Value};
use streamgate_core::api_error::ApiError;
use streamgate_core::pipeline::Job;
use streamgate_core::video::{visible_to, AudioTrack, GateRule, ListQuery, Rendition, VideoStatus};

pub use streamgate_spin::video_schema::{gate_of, open, read_error as db_error, text, tracks_of};

/// A rendition as listed on a video (segment lists stay internal: the manifests use them).
#[derive(Serialize)]
pub struct RenditionSummary {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub frame_rate: f64,
    pub codecs: String,
}

impl From<Rendition> for RenditionSummary {
    fn from(r: Rendition) -> Self {
        RenditionSummary {
            name: r.name,
            width: r.width,
            height: r.height,
            bandwidth: r.bandwidth,
            average_bandwidth: r.average_bandwidth,
            frame_rate: r.frame_rate,
            codecs: r.codecs,
        }
    }
}

/// An audio track as listed on a video.
#[derive(Serialize)]
pub struct AudioSummary {
    pub name: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub channels: u32,
    pub sample_rate: u32,
}

impl From<AudioTrack> for AudioSummary {
    fn from(a: AudioTrack) -> Self {
        AudioSummary {
            name: a.name,
            bandwidth: a.bandwidth,
            average_bandwidth: a.average_bandwidth,
            codecs: a.codecs,
            channels: a.channels,
            sample_rate: a.sample_rate,
        }
    }
}

#[derive(Serialize)]
pub struct Video {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub owner: String,
    pub status: String,
    /// Why it failed, for its owner: a fixed snake_case code and a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<i64>,
    pub renditions: Vec<RenditionSummary>,
    pub audio: Vec<AudioSummary>,
    pub gate: Vec<GateRule>,
    /// A ready video's poster on the media origin, public like the title (no token): set by
    /// `with_public_poster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poster_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub gate_version: i64,
    /// The poster's file name in the ladder, as the transcode reported it.
    #[serde(skip)]
    pub poster: Option<String>,
}

const VIDEO_COLUMNS: &str = "id, owner, title, description, status, error_code, error, progress,
     created_at, updated_at, gate_version, poster";

fn video_from(row: &spin_sdk::sqlite3::Row<'_>) -> Video {
    Video {
        id: row.get::<&str>("id").unwrap_or_default().to_string(),
        owner: row.get::<&str>("owner").unwrap_or_default().to_string(),
        title: row.get::<&str>("title").unwrap_or_default().to_string(),
        description: row.get::<&str>("description").map(str::to_string),
        status: row.get::<&str>("status").unwrap_or_default().to_string(),
        error_code: row.get::<&str>("error_code").map(str::to_string),
        error: row.get::<&str>("error").map(str::to_string),
        progress: row.get::<i64>("progress"),
        created_at: row.get::<i64>("created_at").unwrap_or_default(),
        updated_at: row.get::<i64>("updated_at").unwrap_or_default(),
        gate_version: row.get::<i64>("gate_version").unwrap_or_default(),
        poster: row.get::<&str>("poster").map(str::to_string),
        poster_url: None,
        renditions: Vec::new(),
        audio: Vec::new(),
        gate: Vec::new(),
    }
}

/// How many videos one wallet may have awaiting their upload, and how long such a video counts:
/// its upload URL's lifetime (after that the URL is dead and the video abandoned).
pub struct PendingQuota {
    pub max: i64,
    pub window_secs: i64,
}

/// Inserts the video unless its owner already has `quota.max` videos awaiting an upload whose
/// URL still works; false (and nothing stored) if so. The count and the insert are one
/// statement, so concurrent creations cannot together pass the limit.
#[allow(clippy::too_many_arguments)]
pub fn insert_video(
    db: &Connection,
    id: &str,
    owner: &str,
    title: &str,
    description: Option<&str>,
    gate: &[GateRule],
    quota: &PendingQuota,
    now: i64,
) -> Result<bool, ApiError> {
    // Rules first, under version 1; the video row that points at them comes last, so a video
    // is never visible without its gate.
    write_gate_version(db, id, 1, gate)?;
    db.execute(
        "INSERT INTO videos (id, owner, title, description, status, created_at, updated_at, gate_version)
         SELECT ?, ?, ?, ?, 'awaiting_upload', ?, ?, 1
         WHERE (SELECT COUNT(*) FROM videos
                WHERE owner = ? AND status = 'awaiting_upload' AND created_at > ?) < ?",
        &[
            text(id),
            text(owner),
            text(title),
            description.map_or(Value::Null, text),
            Value::Integer(now),
            Value::Integer(now),
            text(owner),
            Value::Integer(now - quota.window_secs),
            Value::Integer(quota.max),
        ],
    )
    .map_err(db_error)?;
    if db.changes() == 1 {
        return Ok(true);
    }
    // Refused: the rules written for this (fresh, random) id belong to no video.
    db.execute("DELETE FROM gate_rules WHERE video_id = ?", &[text(id)])
        .map_err(db_error)?;
    Ok(false)
}

/// When the oldest of the owner's pending uploads stops counting (its URL expires), if any.
pub fn oldest_pending_expiry(
    db: &Connection,
    owner: &str,
    quota: &PendingQuota,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    let result = db
        .execute(
            "SELECT MIN(created_at) AS oldest FROM videos
             WHERE owner = ? AND status = 'awaiting_upload' AND created_at > ?",
            &[text(owner), Value::Integer(now - quota.window_secs)],
        )
        .map_err(db_error)?;
    let oldest = result
        .rows()
        .next()
        .and_then(|row| row.get::<i64>("oldest"));
    Ok(oldest.map(|oldest| oldest + quota.window_secs))
}

fn write_gate_version(
    db: &Connection,
    id: &str,
    version: i64,
    gate: &[GateRule],
) -> Result<(), ApiError> {
    for (position, rule) in gate.iter().enumerate() {
        db.execute(
            "INSERT OR REPLACE INTO gate_rules (video_id, version, position, rule) VALUES (?, ?, ?, ?)",
            &[
                text(id),
                Value::Integer(version),
                Value::Integer(position as i64),
                Value::Text(serde_json::to_string(rule).map_err(db_error)?),
            ],
        )
        .map_err(db_error)?;
    }
    Ok(())
}

/// Replaces the gate: new version written, then switched to in one statement, then the old
/// rows dropped. Fails with 409 if another update switched versions in between.
pub fn replace_gate(
    db: &Connection,
    video: &Video,
    gate: &[GateRule],
    now: i64,
) -> Result<(), ApiError> {
    let next = video.gate_version + 1;
    db.execute(
        "DELETE FROM gate_rules WHERE video_id = ? AND version = ?",
        &[text(&video.id), Value::Integer(next)],
    )
    .map_err(db_error)?;
    write_gate_version(db, &video.id, next, gate)?;
    db.execute(
        "UPDATE videos SET gate_version = ?, updated_at = ? WHERE id = ? AND gate_version = ?",
        &[
            Value::Integer(next),
            Value::Integer(now),
            text(&video.id),
            Value::Integer(video.gate_version),
        ],
    )
    .map_err(db_error)?;
    if db.changes() != 1 {
        return Err(ApiError::new(
            409,
            "conflict",
            "the gate was changed concurrently; retry",
        ));
    }
    db.execute(
        "DELETE FROM gate_rules WHERE video_id = ? AND version < ?",
        &[text(&video.id), Value::Integer(next)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// The video's row, or 404.
fn row(db: &Connection, id: &str) -> Result<Video, ApiError> {
    let result = db
        .execute(
            &format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE id = ?"),
            &[text(id)],
        )
        .map_err(db_error)?;
    let video = result.rows().next().map(|row| video_from(&row));
    video.ok_or_else(|| unknown(id))
}

/// What a caller hears of a video that does not exist, or that it may not see.
pub fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no video `{id}`"))
}

fn with_tracks(db: &Connection, mut video: Video) -> Result<Video, ApiError> {
    video.gate = gate_of(db, &video.id)?;
    let (renditions, audio) = tracks_of(db, &video.id)?;
    video.renditions = renditions.into_iter().map(Into::into).collect();
    video.audio = audio.into_iter().map(Into::into).collect();
    Ok(video)
}

/// The video with its gate and renditions, or 404.
pub fn video(db: &Connection, id: &str) -> Result<Video, ApiError> {
    with_tracks(db, row(db, id)?)
}

/// The video as `viewer` (a checksummed address, `None` for anonymous) may see it: 404, as for
/// an unknown id, when it is not ready and not theirs; the failure reason only for the owner.
/// Nothing more is read for a video the caller may not see.
pub fn video_for(db: &Connection, id: &str, viewer: Option<&str>) -> Result<Video, ApiError> {
    let mut video = row(db, id)?;
    if !visible_to(&video.status, &video.owner, viewer) {
        return Err(unknown(id));
    }
    if !is_owner(&video, viewer) {
        video.hide_owner_details();
    }
    with_tracks(db, video)
}

pub fn is_owner(video: &Video, viewer: Option<&str>) -> bool {
    viewer.is_some_and(|v| v.eq_ignore_ascii_case(&video.owner))
}

impl Video {
    /// The public poster URL (`<media_base_url>/posters/<id>.jpg`, which the origin serves
    /// without a token) of a ready video that has a poster; none otherwise.
    pub fn with_public_poster(&mut self, media_base_url: &str) {
        self.poster_url = (self.status == VideoStatus::Ready.as_str()
            && self.poster.is_some()
            && !media_base_url.is_empty())
        .then(|| {
            format!(
                "{}/posters/{}.jpg",
                media_base_url.trim_end_matches('/'),
                self.id
            )
        });
    }

    /// Drops what only the owner sees (a ready video has none; this keeps it so).
    pub fn hide_owner_details(&mut self) {
        self.error_code = None;
        self.error = None;
    }
}

/// Newest first; `limit + 1` rows are read to know whether there is a next page.
pub fn list(db: &Connection, q: &ListQuery) -> Result<(Vec<Video>, bool), ApiError> {
    let mut sql = format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(owner) = &q.owner {
        sql.push_str(" AND owner = ?");
        params.push(text(owner));
    }
    if let Some(status) = q.status {
        sql.push_str(" AND status = ?");
        params.push(text(status.as_str()));
    }
    if let Some((at, id)) = &q.after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        params.extend([Value::Integer(*at), Value::Integer(*at), text(id)]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    params.push(Value::Integer(q.limit + 1));
    let result = db.execute(&sql, &params).map_err(db_error)?;
    let mut videos: Vec<Video> = result.rows().map(|row| video_from(&row)).collect();
    let more = videos.len() as i64 > q.limit;
    videos.truncate(q.limit as usize);
    for video in &mut videos {
        video.gate = gate_of(db, &video.id)?;
    }
    Ok((videos, more))
}

/// Moves a video to `next` if its current status allows it; true if this call moved it.
pub fn advance(db: &Connection, id: &str, next: VideoStatus, now: i64) -> Result<bool, ApiError> {
    let allowed = VideoStatus::allowed_before(next);
    let placeholders = vec!["?"; allowed.len()].join(", ");
    let mut params = vec![text(next.as_str()), Value::Integer(now), text(id)];
    params.extend(allowed.iter().map(|s| text(s)));
    db.execute(
        &format!("UPDATE videos SET status = ?, updated_at = ? WHERE id = ? AND status IN ({placeholders})"),
        &params,
    )
    .map_err(db_error)?;
    Ok(db.changes() == 1)
}

/// Stores a transcode's progress, never backwards, while the video is queued or transcoding.
pub fn record_progress(db: &Connection, id: &str, percent: i64, now: i64) -> Result<(), ApiError> {
    db.execute(
        "UPDATE videos SET progress = MAX(COALESCE(progress, 0), ?), updated_at = ?
         WHERE id = ? AND status IN ('queued', 'transcoding')",
        &[Value::Integer(percent), Value::Integer(now), text(id)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Moves the video to `failed` with its reason, if its status allows it. Status, code and
/// sentence in one statement: a failed video always says why.
pub fn fail(
    db: &Connection,
    id: &str,
    code: &str,
    sentence: &str,
    now: i64,
) -> Result<(), ApiError> {
    let allowed = VideoStatus::allowed_before(VideoStatus::Failed)
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    db.execute(
        &format!(
            "UPDATE videos SET status = 'failed', error_code = ?, error = ?,
             updated_at = ? WHERE id = ? AND status IN ({allowed})"
        ),
        &[text(code), text(sentence), Value::Integer(now), text(id)],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn set_field(
    db: &Connection,
    id: &str,
    column: &'static str,
    value: Value,
) -> Result<(), ApiError> {
    db.execute(
        &format!("UPDATE videos SET {column} = ? WHERE id = ?"),
        &[value, text(id)],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn replace_tracks(
    db: &Connection,
    id: &str,
    renditions: &[Rendition],
    audio: &[AudioTrack],
) -> Result<(), ApiError> {
    for table in ["renditions", "audio_tracks"] {
        db.execute(
            &format!("DELETE FROM {table} WHERE video_id = ?"),
            &[text(id)],
        )
        .map_err(db_error)?;
    }
    for (position, r) in renditions.iter().enumerate() {
        db.execute(
            "INSERT INTO renditions (video_id, position, name, rendition) VALUES (?, ?, ?, ?)",
            &[
                text(id),
                Value::Integer(position as i64),
                text(&r.name),
                Value::Text(serde_json::to_string(r).map_err(db_error)?),
            ],
        )
        .map_err(db_error)?;
    }
    for (position, a) in audio.iter().enumerate() {
        db.execute(
            "INSERT INTO audio_tracks (video_id, position, name, track) VALUES (?, ?, ?, ?)",
            &[
                text(id),
                Value::Integer(position as i64),
                text(&a.name),
                Value::Text(serde_json::to_string(a).map_err(db_error)?),
            ],
        )
        .map_err(db_error)?;
    }
    // The kept playlists are rendered from exactly these tracks and replaced with them (the
    // caller's transaction), so a playlist never outlives the ladder it lists.
    db.execute(
        "DELETE FROM playlist_templates WHERE video_id = ?",
        &[text(id)],
    )
    .map_err(db_error)?;
    if let Some((duration, templates)) =
        streamgate_core::playlist::template::templates(id, renditions, audio)
    {
        for t in templates {
            db.execute(
                "INSERT INTO playlist_templates (video_id, file, duration, body) VALUES (?, ?, ?, ?)",
                &[text(id), text(&t.file), Value::Real(duration), Value::Text(t.body)],
            )
            .map_err(db_error)?;
        }
    }
    Ok(())
}

pub fn delete_video(db: &Connection, id: &str) -> Result<(), ApiError> {
    // The row first: once it is gone the video is gone for every reader; the rest is cleanup.
    db.execute("DELETE FROM videos WHERE id = ?", &[text(id)])
        .map_err(db_error)?;
    // A job not yet handed to the queue goes with its video: nothing is left to transcode.
    for table in [
        "gate_rules",
        "renditions",
        "audio_tracks",
        "playlist_templates",
        "job_outbox",
    ] {
        db.execute(
            &format!("DELETE FROM {table} WHERE video_id = ?"),
            &[text(id)],
        )
        .map_err(db_error)?;
    }
    Ok(())
}

/// Runs `f` in one transaction on `db`: committed if it succeeds, rolled back if it fails.
/// `BEGIN IMMEDIATE` takes the write lock at once, so a concurrent writer waits here rather than
/// reading what this transaction is about to change.
pub fn in_transaction<T>(
    db: &Connection,
    f: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    db.execute("BEGIN IMMEDIATE", &[]).map_err(db_error)?;
    let outcome = f().and_then(|value| {
        db.execute("COMMIT", &[]).map_err(db_error)?;
        Ok(value)
    });
    if outcome.is_err() {
        // Whatever failed (the commit included), nothing of it stays; an error here means the
        // transaction is already gone.
        let _ = db.execute("ROLLBACK", &[]);
    }
    outcome
}

pub fn event_seen(db: &Connection, event_id: &str) -> Result<bool, ApiError> {
    let result = db
        .execute(
            "SELECT 1 AS seen FROM applied_events WHERE id = ?",
            &[text(event_id)],
        )
        .map_err(db_error)?;
    let seen = !result.rows.is_empty();
    Ok(seen)
}

pub fn record_event(
    db: &Connection,
    event_id: &str,
    video_id: &str,
    kind: &str,
    now: i64,
) -> Result<(), ApiError> {
    db.execute(
        "INSERT OR IGNORE INTO applied_events (id, video_id, type, received_at) VALUES (?, ?, ?, ?)",
        &[text(event_id), text(video_id), text(kind), Value::Integer(now)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// The queue took `job` as entry `stream_id`; `action` is [`Job::action`]'s text.
pub fn record_job(db: &Connection, job: &Job, stream_id: &str, now: i64) -> Result<(), ApiError> {
    db.execute(
        "INSERT INTO jobs (video_id, stream_id, action, enqueued_at) VALUES (?, ?, ?, ?)",
        &[
            text(job.video_id()),
            text(stream_id),
            text(job.action()),
            Value::Integer(now),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// A job an event decided on, waiting in `job_outbox` to be handed to the queue.
pub struct PendingJob {
    pub row: i64,
    pub job: Job,
}

/// Writes the job into the outbox, in the event's transaction: the queue is called only after
/// the commit ([`pending_jobs`], [`claim_job`], [`job_handed_off`]). The row holds the stream
/// entry's `action`, `video_id` and `source` (empty for a job without one) as text; the time
/// and trace are the hand-off's.
pub fn add_to_outbox(db: &Connection, job: &Job, now: i64) -> Result<(), ApiError> {
    let fields = job.fields();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    db.execute(
        "INSERT INTO job_outbox (video_id, action, source, created_at) VALUES (?, ?, ?, ?)",
        &[
            text(job.video_id()),
            text(job.action()),
            text(field("source")),
            Value::Integer(now),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// The video's outbox rows as jobs (serde's form of [`Job`]: the worker's checks on a stream
/// entry are its own, as before); a row that is not a job is the store's fault (503).
pub fn pending_jobs(db: &Connection, video_id: &str) -> Result<Vec<PendingJob>, ApiError> {
    let result = db
        .execute(
            "SELECT id, video_id, action, source FROM job_outbox WHERE video_id = ? ORDER BY id",
            &[text(video_id)],
        )
        .map_err(db_error)?;
    result
        .rows()
        .map(|row| {
            let fields: serde_json::Map<String, serde_json::Value> =
                ["video_id", "action", "source"]
                    .into_iter()
                    .filter_map(|name| {
                        let value = row.get::<&str>(name).filter(|v| !v.is_empty())?;
                        Some((name.to_string(), value.into()))
                    })
                    .collect();
            Ok(PendingJob {
                row: row.get::<i64>("id").unwrap_or_default(),
                job: serde_json::from_value(fields.into()).map_err(db_error)?,
            })
        })
        .collect()
}

/// Takes the row for this request until `until`, unless another request holds it: of several
/// deliveries at once, one hands the job to the queue. The claim lapses by itself, so a row
/// whose claimer died (the host stopped mid-call) is taken by a later delivery.
pub fn claim_job(db: &Connection, row: i64, now: i64, until: i64) -> Result<bool, ApiError> {
    db.execute(
        "UPDATE job_outbox SET claimed_until = ?
         WHERE id = ? AND (claimed_until IS NULL OR claimed_until <= ?)",
        &[
            Value::Integer(until),
            Value::Integer(row),
            Value::Integer(now),
        ],
    )
    .map_err(db_error)?;
    Ok(db.changes() == 1)
}

/// The queue refused: the next delivery may try at once.
pub fn release_job(db: &Connection, row: i64) -> Result<(), ApiError> {
    db.execute(
        "UPDATE job_outbox SET claimed_until = NULL WHERE id = ?",
        &[Value::Integer(row)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// The queue took the job: its stream id is recorded and the outbox row goes, together.
pub fn job_handed_off(
    db: &Connection,
    job: &PendingJob,
    stream_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    in_transaction(db, || {
        record_job(db, &job.job, stream_id, now)?;
        db.execute(
            "DELETE FROM job_outbox WHERE id = ?",
            &[Value::Integer(job.row)],
        )
        .map_err(db_error)?;
        Ok(())
    })
}
