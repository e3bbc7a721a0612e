//! The store side of a playlist cache (issue 15 item 3): the manifest's one read today (status +
//! every track's JSON, the statement of `video_schema::ready_tracks`) vs what a cached path would
//! still read (status + a version) plus a key-value `get` of the rendered text, on SQLite files as
//! the host's default stores (tables reduced to the columns read). Native rusqlite, so without
//! the Wasm host-call cost each store call adds in a component.
//! `cargo run --release -p streamgate-host --example playlist_store_cost`; docs/benchmarks.md.
use std::hint::black_box;
use std::time::Instant;
fn time<F: FnMut() -> usize>(label: &str, iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        black_box(f());
    }
    let t = Instant::now();
    let mut s = 0;
    for _ in 0..iters {
        s += black_box(f());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
    println!("{label:<52} {us:>9.2} us ({s})");
    us
}
const TRACKS: &str = "SELECT v.status AS status, 'video' AS kind, r.position AS position,
        r.rendition AS track
     FROM videos v LEFT JOIN renditions r ON r.video_id = v.id WHERE v.id = ?
     UNION ALL
     SELECT NULL, 'audio', a.position, a.track FROM audio_tracks a WHERE a.video_id = ?
     ORDER BY kind DESC, position";
fn main() {
    let dir = std::env::temp_dir().join(format!("store_cost_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    let kv = rusqlite::Connection::open(dir.join("kv.sqlite")).unwrap();
    db.execute_batch("PRAGMA journal_mode=WAL;
      CREATE TABLE videos (id TEXT PRIMARY KEY, status TEXT, updated_at INTEGER);
      CREATE TABLE renditions (video_id TEXT, position INTEGER, name TEXT, rendition TEXT, PRIMARY KEY (video_id, position));
      CREATE TABLE audio_tracks (video_id TEXT, position INTEGER, name TEXT, track TEXT, PRIMARY KEY (video_id, position));").unwrap();
    kv.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE spin_key_value (store TEXT, key TEXT, value BLOB, PRIMARY KEY (store, key));").unwrap();
    for n in [10usize, 1800] {
        let id = format!("video{n:06}");
        let segs: Vec<String> = (0..n)
            .map(|i| format!("{{\"uri\":\"seg_{i:05}.m4s\",\"duration\":4.0}}"))
            .collect();
        let track = format!("{{\"name\":\"360p\",\"width\":640,\"height\":360,\"bandwidth\":800000,\"average_bandwidth\":700000,\"frame_rate\":30.0,\"codecs\":\"avc1.64001e\",\"init\":\"init.mp4\",\"segments\":[{}]}}", segs.join(","));
        db.execute("INSERT INTO videos VALUES (?, 'ready', 1764585600)", [&id])
            .unwrap();
        for p in 0..2 {
            db.execute(
                "INSERT INTO renditions VALUES (?, ?, 'r', ?)",
                rusqlite::params![&id, p, &track],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO audio_tracks VALUES (?, 0, 'audio', ?)",
            rusqlite::params![&id, &track],
        )
        .unwrap();
        // A rendered media playlist of this length (the manifest's 1312 B for 10, 192 842 B for 1800).
        let body = vec![b'x'; if n == 10 { 1312 } else { 192_842 }];
        kv.execute(
            "INSERT INTO spin_key_value VALUES ('default', ?, ?)",
            rusqlite::params![format!("pl:{id}"), body],
        )
        .unwrap();
        let iters = if n > 100 { 2_000 } else { 50_000 };
        println!(
            "-- {n} segments per track ({} B of JSON per track)",
            track.len()
        );
        let mut tracks = db.prepare(TRACKS).unwrap();
        time("TRACKS read (status + 3 track JSON rows)", iters, || {
            tracks
                .query_map([&id, &id], |r| {
                    Ok(r.get::<_, Option<String>>(3)?.map_or(0, |s| s.len()))
                })
                .unwrap()
                .map(|x| x.unwrap())
                .sum()
        });
        let mut status = db
            .prepare("SELECT status, updated_at FROM videos WHERE id = ?")
            .unwrap();
        time("status + updated_at read", iters, || {
            status
                .query_row([&id], |r| Ok(r.get::<_, String>(0)?.len()))
                .unwrap()
        });
        let mut get = kv
            .prepare("SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?")
            .unwrap();
        let key = format!("pl:{id}");
        time("KV get of the rendered media playlist", iters, || {
            get.query_row([&key], |r| Ok(r.get::<_, Vec<u8>>(0)?.len()))
                .unwrap()
        });
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
