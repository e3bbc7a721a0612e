//! Benchmark 5, flood: /health for a good client, quiet vs under a slow-loris flood from another
//! address (tools/bench-flood from 127.0.0.2: half heads, stalled bodies on POST
//! /api/v1/auth/verify, silent connections), same host with its default limits, interleaved rounds.

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::support::{
    built, free_port, load_average, log, median, sleep, start_host, Proc, Result,
};
use crate::wrk::Measure;
use crate::Settings;

struct Round {
    quiet: Measure,
    flood: Measure,
    /// What bench-flood saw (its JSON line).
    stats: Value,
}

pub fn run(s: &Settings) -> Result<()> {
    let tool = "target/release/bench-flood";
    built(tool, "bench-flood")?;
    let host_port = free_port()?;
    let _host = start_host(&s.work, "flood", host_port, &[])?;
    let url = format!("http://127.0.0.1:{host_port}/health");
    s.wrk.warm(&url)?;

    log(&format!(
        "flood: wrk -t{} -c{} -d{}s on /health from 127.0.0.1, quiet and under {} stalled connections from 127.0.0.2, {} rounds",
        s.wrk.threads, s.wrk.connections, s.wrk.seconds, s.flood_connections, s.rounds
    ));
    let mut rounds = Vec::new();
    for r in 1..=s.rounds {
        let quiet = s.wrk.measure(&url)?;
        let out = s.path(&format!("flood-{r}.json"));
        let file = fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let flood = Proc::spawn(
            Command::new(tool)
                .args([
                    "--target",
                    &format!("127.0.0.1:{host_port}"),
                    "--source",
                    "127.0.0.2",
                ])
                .args(["--connections", &s.flood_connections])
                .args([
                    "--seconds",
                    &(s.wrk.seconds + 3).to_string(),
                    "--path",
                    "/api/v1/auth/verify",
                ])
                .stdout(file),
            "bench-flood",
        )?;
        // Let the flood open its connections and settle before measuring.
        sleep(2)?;
        let flooded = s.wrk.measure(&url)?;
        flood.wait()?;
        let line = fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let stats = serde_json::from_str(&line)
            .map_err(|e| format!("bench-flood printed no JSON ({e}): {line}"))?;
        rounds.push(Round {
            quiet,
            flood: flooded,
            stats,
        });
        // Let the host shed the last stalled connections before the next quiet run.
        sleep(3)?;
    }
    print!("{}", report(&rounds, load_average().0));
    let bad: u64 = rounds
        .iter()
        .map(|r| r.quiet.failures + r.flood.failures)
        .sum();
    if bad > 0 {
        return Err(format!(
            "the good client had {bad} failed requests (non-2xx answers or socket errors)"
        ));
    }
    Ok(())
}

/// A JSON value as Python prints what `json.loads` made of it (an object as `{'200': 3}`).
fn python(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("'{k}': {}", python(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn report(rounds: &[Round], load: f64) -> String {
    let mut out = format!(
        "{:>5} {:>12} {:>10} {:>12} {:>10} {:>7}  the flood's connections\n",
        "round", "quiet req/s", "quiet p99", "flood req/s", "flood p99", "failed"
    );
    for (i, r) in rounds.iter().enumerate() {
        out += &format!(
            "{:>5} {:12.0} {:8.2}ms {:12.0} {:8.2}ms {:>7}  peak {} open, {} connects, answered {}\n",
            i + 1,
            r.quiet.rps,
            r.quiet.p99_ms,
            r.flood.rps,
            r.flood.p99_ms,
            r.quiet.failures + r.flood.failures,
            python(&r.stats["peak_open"]),
            python(&r.stats["connects"]),
            python(&r.stats["answers"]),
        );
    }
    let med = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let (q_rps, q_p99) = (med(|r| r.quiet.rps), med(|r| r.quiet.p99_ms));
    let (f_rps, f_p99) = (med(|r| r.flood.rps), med(|r| r.flood.p99_ms));
    out += &format!("median: quiet {q_rps:.0} req/s, p99 {q_p99:.2} ms; under the flood {f_rps:.0} req/s, p99 {f_p99:.2} ms\n");
    out += &format!(
        "flood/quiet: p99 {:.2}x, throughput {:.2}x; load average {load:.2}\n",
        f_p99 / q_p99,
        f_rps / q_rps
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rps: f64, p99_ms: f64, failures: u64) -> Measure {
        Measure {
            rps,
            p99_ms,
            failures,
        }
    }

    #[test]
    fn the_report_reads_as_the_shell_printed_it() {
        let stats = |peak: u64| {
            serde_json::json!({"connects": 700, "connect_failures": 0, "closed_by_server": 100,
                "peak_open": peak, "answers": {"408": 12, "503": 3}})
        };
        let rounds = [
            Round {
                quiet: m(16000.4, 5.1, 0),
                flood: m(12000.0, 9.25, 0),
                stats: stats(600),
            },
            Round {
                quiet: m(17000.0, 4.9, 0),
                flood: m(13000.0, 8.75, 1),
                stats: stats(599),
            },
        ];
        assert_eq!(
            report(&rounds, 2.0),
            "round  quiet req/s  quiet p99  flood req/s  flood p99  failed  the flood's connections
    1        16000     5.10ms        12000     9.25ms       0  peak 600 open, 700 connects, answered {'408': 12, '503': 3}
    2        17000     4.90ms        13000     8.75ms       1  peak 599 open, 700 connects, answered {'408': 12, '503': 3}
median: quiet 16500 req/s, p99 5.00 ms; under the flood 12500 req/s, p99 9.00 ms
flood/quiet: p99 1.80x, throughput 0.76x; load average 2.00
"
        );
    }
}
