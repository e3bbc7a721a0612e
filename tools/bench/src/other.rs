//! Benchmark 6, other: the same routes on the embedded host and on a second server of the same app
//! (e.g. `spin up` with the same spin.toml and runtime config), wrk in interleaved rounds whose
//! order alternates, so the machine's shifting load falls on both alike.

use crate::support::{free_port, get, load_average, log, median, start_host, Result};
use crate::Settings;

struct Row {
    round: u64,
    route: String,
    host: bool,
    rps: f64,
    p99_ms: f64,
    failures: u64,
}

pub fn run(s: &Settings) -> Result<()> {
    let other = s.other_url.trim_end_matches('/');
    let host_port = free_port()?;
    let host_url = format!("http://127.0.0.1:{host_port}");
    let _host = start_host(&s.work, "other", host_port, &[])?;
    // The same app on both sides, or the comparison means nothing: every route answers 200 on
    // both, and /health with the same bytes.
    for route in &s.other_routes {
        for first in [host_url.as_str(), other] {
            match get(&format!("{first}{route}")) {
                Some((200, _)) => {}
                answer => {
                    let (code, body) = match answer {
                        Some((code, body)) => (code.to_string(), body),
                        None => ("nothing (no connection)".to_string(), Vec::new()),
                    };
                    let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    return Err(format!("{first}{route} answered {code}, not 200: {body}"));
                }
            }
        }
    }
    let health = |base: &str| {
        get(&format!("{base}/health"))
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    if health(&host_url) != health(other) {
        return Err(format!(
            "{other}/health does not answer what this app's /health does: is it the same app?"
        ));
    }
    for route in &s.other_routes {
        s.wrk.warm(&format!("{host_url}{route}"))?;
        s.wrk.warm(&format!("{other}{route}"))?;
    }

    log(&format!(
        "other: wrk -t{} -c{} -d{}s on {}, embedded host vs {other}, {} rounds",
        s.wrk.threads,
        s.wrk.connections,
        s.wrk.seconds,
        s.other_routes.join(" "),
        s.rounds
    ));
    let mut rows = Vec::new();
    for round in 1..=s.rounds {
        for route in &s.other_routes {
            let order = if round % 2 == 1 {
                [true, false]
            } else {
                [false, true]
            };
            for host in order {
                let base = if host { host_url.as_str() } else { other };
                let m = s.wrk.measure(&format!("{base}{route}"))?;
                rows.push(Row {
                    round,
                    route: route.clone(),
                    host,
                    rps: m.rps,
                    p99_ms: m.p99_ms,
                    failures: m.failures,
                });
            }
        }
    }
    print!("{}", report(&rows, other, load_average().0));
    let bad: u64 = rows.iter().map(|r| r.failures).sum();
    if bad > 0 {
        return Err(format!("{bad} requests failed (non-2xx answers or socket errors): the figures are not comparable"));
    }
    Ok(())
}

fn report(rows: &[Row], other: &str, load: f64) -> String {
    let mut out = format!(
        "{:10} {:>15} {:>8} {:>12} {:>8} {:>12} {:>10}\n",
        "route", "embedded req/s", "p99 ms", "other req/s", "p99 ms", "req/s ratio", "p99 ratio"
    );
    let mut routes: Vec<&str> = Vec::new();
    for r in rows {
        if !routes.contains(&r.route.as_str()) {
            routes.push(&r.route);
        }
    }
    for route in routes {
        let med = |host: bool, f: fn(&Row) -> f64| {
            median(
                rows.iter()
                    .filter(|r| r.route == route && r.host == host)
                    .map(f)
                    .collect(),
            )
        };
        let (h_rps, h_p99) = (med(true, |r| r.rps), med(true, |r| r.p99_ms));
        let (o_rps, o_p99) = (med(false, |r| r.rps), med(false, |r| r.p99_ms));
        out += &format!(
            "{route:10} {h_rps:15.0} {h_p99:8.2} {o_rps:12.0} {o_p99:8.2} {:11.2}x {:9.2}x\n",
            h_rps / o_rps,
            h_p99 / o_p99
        );
    }
    let mut round_numbers: Vec<u64> = rows.iter().map(|r| r.round).collect();
    round_numbers.dedup();
    out += &format!(
        "other = {other}; medians of {} interleaved rounds; ratios are embedded/other; load average {load:.2}\n",
        round_numbers.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_the_shell_printed_it() {
        let row = |round, route: &str, host, rps, p99_ms| Row {
            round,
            route: route.into(),
            host,
            rps,
            p99_ms,
            failures: 0,
        };
        let rows = [
            row(1, "/health", true, 10000.0, 5.0),
            row(1, "/health", false, 20000.0, 2.5),
            row(1, "/ready", true, 3000.0, 12.0),
            row(1, "/ready", false, 4000.0, 10.0),
            row(2, "/health", false, 22000.0, 2.5),
            row(2, "/health", true, 11000.0, 6.0),
            row(2, "/ready", false, 5000.0, 10.0),
            row(2, "/ready", true, 3500.0, 13.0),
        ];
        assert_eq!(
            report(&rows, "http://127.0.0.1:3000", 0.5),
            "route       embedded req/s   p99 ms  other req/s   p99 ms  req/s ratio  p99 ratio
/health              10500     5.50        21000     2.50        0.50x      2.20x
/ready                3250    12.50         4500    10.00        0.72x      1.25x
other = http://127.0.0.1:3000; medians of 2 interleaved rounds; ratios are embedded/other; load average 0.50
"
        );
    }
}
