//! StreamGate's native side. One binary, two roles (see docs/native-transcoder.md):
//! `serve` is the tus upload origin and the media origin, `work` is the ffmpeg queue worker
//! (`ladder` runs the worker's transcode on one file, for benchmarks). They share only the
//! media directory and the signed events they send to the Spin app.

pub mod bench;
pub mod config;
pub mod events;
pub mod fsutil;
pub mod intake;
pub mod job_intake;
pub mod ladder;
pub mod media;
pub mod metrics;
pub mod redis_auth;
pub mod server;
pub mod trace;
pub mod transcode;
pub mod tus;
pub mod worker;
