//! What a playlist cache would save (issue 15 item 3): per request the playlists component parses
//! the stored track JSON and renders; a cache would instead stamp the viewer's token into a kept
//! text. Native timings of both, for the bench clip (10 segments a track) and a 2 h video (1 800).
//! `cargo run --release -p streamgate-core --example playlist_cost`; results in docs/benchmarks.md.
use std::hint::black_box;
use std::time::Instant;
use streamgate_core::playlist::{self, Links};
use streamgate_core::video::{AudioTrack, Rendition, Segment};

fn segs(n: usize) -> Vec<Segment> {
    (0..n)
        .map(|i| Segment {
            uri: format!("seg_{i:05}.m4s"),
            duration: 4.0,
        })
        .collect()
}
fn rend(name: &str, h: u32, n: usize) -> Rendition {
    Rendition {
        name: name.into(),
        width: h * 16 / 9,
        height: h,
        bandwidth: 800_000,
        average_bandwidth: 700_000,
        frame_rate: 30.0,
        codecs: "avc1.64001e".into(),
        init: "init.mp4".into(),
        segments: segs(n),
    }
}
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
    println!("{label:<48} {us:>9.2} us  ({s})");
    us
}
fn main() {
    let token = "st=1764585600~exp=1764589800~acl=/stream/0123456789abcdef0123456789abcdef/*~v=1~hmac=3f0c4a1b2e9d8c7f6a5b4c3d2e1f00112233445566778899aabbccddeeff0011";
    let id = "0123456789abcdef0123456789abcdef";
    for n in [10usize, 1800] {
        let r = vec![rend("360p", 360, n), rend("240p", 240, n)];
        let a: Vec<AudioTrack> = vec![AudioTrack {
            name: "audio".into(),
            bandwidth: 128_000,
            average_bandwidth: 128_000,
            codecs: "mp4a.40.2".into(),
            channels: 2,
            sample_rate: 48_000,
            init: "a_init.mp4".into(),
            segments: segs(n),
        }];
        let rows: Vec<String> = r
            .iter()
            .map(|x| serde_json::to_string(x).unwrap())
            .collect();
        let arow = serde_json::to_string(&a[0]).unwrap();
        let links = Links {
            video_id: id,
            media_base: "http://127.0.0.1:3001",
            token,
        };
        let iters = if n > 100 { 300 } else { 20_000 };
        println!("-- {n} segments per track, 2 renditions + 1 audio");
        let parse = time("parse stored track JSON (3 rows)", iters, || {
            let rs: Vec<Rendition> = rows
                .iter()
                .map(|s| serde_json::from_str(s).unwrap())
                .collect();
            let au: AudioTrack = serde_json::from_str(&arow).unwrap();
            rs.len() + au.segments.len()
        });
        let media = time("render hls_media (360p)", iters, || {
            playlist::hls_media(&r[0].init, &r[0].segments, &links).len()
        });
        let master = time("render hls_master", iters, || {
            playlist::hls_master(&r, &a, token).len()
        });
        let mpd = time("render dash_mpd", iters, || {
            playlist::dash_mpd(&r, &a, &links).len()
        });
        let ph = "\u{0}TOKEN\u{0}";
        let cached_media =
            playlist::hls_media(&r[0].init, &r[0].segments, &Links { token: ph, ..links });
        let cached_mpd = playlist::dash_mpd(&r, &a, &Links { token: ph, ..links });
        let sm = time("stamp cached hls_media (str::replace)", iters, || {
            cached_media.replace(ph, token).len()
        });
        let sd = time("stamp cached dash_mpd (str::replace)", iters, || {
            cached_mpd.replace(ph, token).len()
        });
        println!("   media: parse+render {:.2} us vs stamp {:.2} us; mpd: parse+render {:.2} vs {:.2}; master {:.2}; bytes media {} mpd {}",
            parse + media, sm, parse + mpd, sd, master, cached_media.len(), cached_mpd.len());
    }
}
