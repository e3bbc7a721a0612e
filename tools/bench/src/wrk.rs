//! wrk runs and what its `--latency` output says.

use std::process::{Command, Stdio};

use crate::support::{output, run, Result};

/// The wrk settings of a run: `-t threads -c connections -d seconds`.
pub struct Wrk {
    pub threads: String,
    pub connections: String,
    pub seconds: u64,
}

/// One wrk run: requests/s, p99 latency in ms, and failed requests (non-2xx or 3xx answers
/// plus socket errors).
pub struct Measure {
    pub rps: f64,
    pub p99_ms: f64,
    pub failures: u64,
}

impl Wrk {
    /// One second at 4 connections, output discarded, so that nothing pays first-request costs
    /// inside a measurement.
    pub fn warm(&self, url: &str) -> Result<()> {
        run(
            Command::new("wrk")
                .args(["-t1", "-c4", "-d1s", url])
                .stdout(Stdio::null()),
            "wrk",
        )
    }

    pub fn measure(&self, url: &str) -> Result<Measure> {
        let out = output(
            Command::new("wrk").args([
                &format!("-t{}", self.threads),
                &format!("-c{}", self.connections),
                &format!("-d{}s", self.seconds),
                "--latency",
                url,
            ]),
            "wrk",
        )?;
        parse(&out).ok_or_else(|| format!("wrk printed no requests/s for {url}:\n{out}"))
    }
}

fn parse(out: &str) -> Option<Measure> {
    let mut rps = None;
    let mut p99_ms = f64::NAN;
    let mut failures = 0;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Requests/sec:") {
            rps = fields.get(1).and_then(|v| v.parse().ok());
        } else if fields.first() == Some(&"99%") {
            p99_ms = fields.get(1).map_or(f64::NAN, |v| to_ms(v));
        } else if line.starts_with("  Non-2xx") {
            failures += fields
                .last()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        } else if line.starts_with("  Socket errors") {
            // "  Socket errors: connect 0, read 0, write 0, timeout 0"
            failures += [3, 5, 7, 9]
                .iter()
                .filter_map(|&i| fields.get(i)?.trim_end_matches(',').parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Some(Measure {
        rps: rps?,
        p99_ms,
        failures,
    })
}

/// wrk prints latencies as 1.23ms / 456.00us / 1.20s; anything else is NaN.
fn to_ms(value: &str) -> f64 {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return f64::NAN;
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return f64::NAN;
    }
    // Rounded to 2 decimals as the shell's to_ms printed it, so the medians are the same.
    number.parse::<f64>().map_or(f64::NAN, |n| {
        format!("{:.2}", n * factor).parse().unwrap_or(f64::NAN)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 1s test @ http://127.0.0.1:3000/health
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.93ms    1.10ms  20.46ms   88.29%
    Req/Sec     8.53k   612.33     9.33k    75.00%
  Latency Distribution
     50%    1.66ms
     75%    2.20ms
     90%    3.04ms
     99%    5.74ms
  16974 requests in 1.00s, 2.27MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  16913.45
Transfer/sec:      2.26MB
";

    #[test]
    fn reads_throughput_p99_and_failures() {
        let m = parse(OUT).unwrap();
        assert_eq!(m.rps, 16913.45);
        assert_eq!(m.p99_ms, 5.74);
        assert_eq!(m.failures, 12);
    }

    #[test]
    fn latencies_in_ms() {
        assert_eq!(to_ms("456.00us"), 0.46);
        assert_eq!(to_ms("1.20s"), 1200.0);
        assert_eq!(to_ms("12.34ms"), 12.34);
        assert!(to_ms("1.00m").is_nan());
        assert!(to_ms("").is_nan());
    }

    #[test]
    fn no_throughput_is_no_measure() {
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused\n").is_none());
    }
}
