//! The metadata schema, as versioned migrations (see streamgate_spin::migrations).

use streamgate_spin::migrations::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
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
}];
