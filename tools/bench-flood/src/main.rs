//! `bench-flood --target 127.0.0.1:3000 [--source 127.0.0.2] [--connections 600]
//!   [--seconds 20] [--stalls head,body,idle] [--path /api/v1/auth/verify] [--reopen-ms 250]`
//!
//! Holds a slow-loris flood for `--seconds`, then prints what it saw as one JSON line.

use std::time::Duration;

use bench_flood::{Flood, FloodConfig, Stall};

fn main() {
    let mut config = FloodConfig {
        target: "127.0.0.1:3000".parse().unwrap(),
        source: None,
        connections: 600,
        stalls: vec![Stall::Head, Stall::Body, Stall::Idle],
        path: "/api/v1/auth/verify".into(),
        reopen_after: Duration::from_millis(250),
    };
    let mut seconds = 20u64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let fail = |e: &dyn std::fmt::Display| -> ! {
            eprintln!("bench-flood: {} {value:?}: {e}", args[i]);
            std::process::exit(2)
        };
        match args[i].as_str() {
            "--target" => config.target = value.parse().unwrap_or_else(|e| fail(&e)),
            "--source" => config.source = Some(value.parse().unwrap_or_else(|e| fail(&e))),
            "--connections" => config.connections = value.parse().unwrap_or_else(|e| fail(&e)),
            "--seconds" => seconds = value.parse().unwrap_or_else(|e| fail(&e)),
            "--path" => config.path = value,
            "--reopen-ms" => {
                config.reopen_after =
                    Duration::from_millis(value.parse().unwrap_or_else(|e| fail(&e)))
            }
            "--stalls" => {
                config.stalls = value
                    .split(',')
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| fail(&e))
            }
            other => {
                eprintln!("bench-flood: unknown argument {other}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let flood = Flood::start(config);
    std::thread::sleep(Duration::from_secs(seconds));
    println!("{}", flood.stop().to_json());
}
