//! The job stream in Redis (docs/pipeline.md, "Jobs"): reading and claiming entries, the lease,
//! acknowledging, handing back and dead-lettering, and the gauges the metrics listener reads.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::Value;
use tokio::sync::watch;

use crate::metrics::METRICS;

pub use streamgate_core::pipeline::{
    DEAD_LETTER_STREAM as DEAD, ERROR_STREAM as ERRORS, JOB_STREAM as STREAM,
};
pub const GROUP: &str = "transcoders";

/// The consumer group as this worker sees it.
pub(super) struct Queue {
    conn: MultiplexedConnection,
    /// Blocking XREADGROUP gets its own connection so it never delays the lease heartbeats.
    blocking: MultiplexedConnection,
    consumer: String,
    claim_timeout: Duration,
}

impl Queue {
    /// Connects and creates the consumer group (and the stream) if they do not exist yet.
    pub(super) async fn connect(
        redis_url: &str,
        consumer: &str,
        claim_timeout: Duration,
    ) -> Result<Queue> {
        let client = redis::Client::open(redis_url).with_context(|| {
            format!("bad Redis URL {:?}", crate::redis_auth::redacted(redis_url))
        })?;
        let connect = || async {
            client
                .get_multiplexed_async_connection()
                .await
                .with_context(|| {
                    format!(
                        "cannot connect to Redis at {}",
                        crate::redis_auth::redacted(redis_url)
                    )
                })
        };
        let mut conn = connect().await?;
        let blocking = connect().await?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(e).context("cannot create the consumer group");
            }
        }
        Ok(Queue {
            conn,
            blocking,
            consumer: consumer.to_owned(),
            claim_timeout,
        })
    }

    /// Fresh connections after a Redis error; the old ones stay if this fails.
    pub(super) async fn reconnect(&mut self, redis_url: &str) -> Result<()> {
        let client = redis::Client::open(redis_url)?;
        let (conn, blocking) = (
            client.get_multiplexed_async_connection().await?,
            client.get_multiplexed_async_connection().await?,
        );
        self.conn = conn;
        self.blocking = blocking;
        Ok(())
    }

    /// A stale entry of a dead worker first, else a new one (blocking briefly).
    pub(super) async fn next_entry(
        &mut self,
        cursor: &mut String,
        block_ms: u64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<StreamId>> {
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.claim_ms())
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn)
            .await?;
        *cursor = claimed.next_stream_id;
        if let Some(entry) = claimed.claimed.into_iter().next() {
            return Ok(Some(entry));
        }
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">");
        let reply = tokio::select! {
            r = read.query_async::<Option<StreamReadReply>>(&mut self.blocking) => r?,
            _ = shutdown.changed() => return Ok(None),
        };
        Ok(reply.and_then(|r| r.keys.into_iter().next()?.ids.into_iter().next()))
    }

    pub(super) fn claim_ms(&self) -> u64 {
        self.claim_timeout.as_millis() as u64
    }

    /// The entry's owner and delivery count, `None` once it is acknowledged.
    pub(super) async fn pending_info(&mut self, id: &str) -> Result<Option<(String, usize)>> {
        pending_info(&mut self.conn, id).await
    }

    /// A handle the lease heartbeat uses alongside the job.
    pub(super) fn lease(&self) -> Lease {
        Lease {
            conn: self.conn.clone(),
            consumer: self.consumer.clone(),
        }
    }

    /// Gives the entry up so another worker takes it at once: its idle time set to the claim
    /// timeout and its delivery counter restored, so the interrupted attempt does not count.
    pub(super) async fn hand_back(&mut self, id: &str, attempt: usize) -> Result<()> {
        redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(0)
            .arg(id)
            .arg("IDLE")
            .arg(self.claim_ms())
            .arg("RETRYCOUNT")
            .arg(attempt.saturating_sub(1))
            .arg("JUSTID")
            .query_async::<Value>(&mut self.conn)
            .await?;
        Ok(())
    }

    pub(super) async fn ack(&mut self, id: &str) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        finish(&mut pipe, id);
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }

    /// XADD to the dead-letter stream (the entry's fields, then `fields`) and XACK in one
    /// transaction, so a crash in between redelivers the entry rather than losing it.
    pub(super) async fn dead_letter(
        &mut self,
        id: &str,
        entry: &HashMap<String, String>,
        extra: &[(String, String)],
    ) -> Result<()> {
        let mut fields: Vec<(String, String)> = entry.clone().into_iter().collect();
        fields.sort();
        fields.extend_from_slice(extra);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(DEAD)
            .arg("*")
            .arg(&fields)
            .ignore();
        finish(&mut pipe, id);
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }

    /// Remembers why an attempt failed, for the dead-letter entry if it comes to that.
    pub(super) async fn record_error(&mut self, id: &str, detail: &str) -> Result<()> {
        redis::cmd("HSET")
            .arg(ERRORS)
            .arg(id)
            .arg(detail)
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    pub(super) async fn last_error(&mut self, id: &str) -> Result<Option<String>> {
        Ok(redis::cmd("HGET")
            .arg(ERRORS)
            .arg(id)
            .query_async(&mut self.conn)
            .await?)
    }
}

/// The lease on the entry being worked on, renewed by the heartbeat.
pub(super) struct Lease {
    conn: MultiplexedConnection,
    consumer: String,
}

impl Lease {
    /// `Ok(true)` while this worker still owns the entry (its idle time is then reset without
    /// counting a delivery), `Ok(false)` once another worker took it over.
    pub(super) async fn renew(&mut self, id: &str) -> Result<bool> {
        match pending_info(&mut self.conn, id).await? {
            Some((owner, _)) if owner == self.consumer => {
                let _ = redis::cmd("XCLAIM")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg(0)
                    .arg(id)
                    .arg("JUSTID")
                    .query_async::<Value>(&mut self.conn)
                    .await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

async fn pending_info(
    conn: &mut MultiplexedConnection,
    id: &str,
) -> Result<Option<(String, usize)>> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .next()
        .map(|p| (p.consumer, p.times_delivered)))
}

/// What ends a job's life in the stream, whatever the outcome: acknowledged, and its recorded
/// error dropped. Added to the caller's transaction.
fn finish(pipe: &mut redis::Pipeline, id: &str) {
    pipe.cmd("XACK")
        .arg(STREAM)
        .arg(GROUP)
        .arg(id)
        .ignore()
        .cmd("HDEL")
        .arg(ERRORS)
        .arg(id)
        .ignore();
}

/// Reads the queue gauges from Redis at scrape time.
#[derive(Clone)]
pub struct QueueProbe {
    conn: MultiplexedConnection,
}

impl QueueProbe {
    pub(super) async fn connect(redis_url: &str) -> Result<QueueProbe> {
        let client = redis::Client::open(redis_url)?;
        Ok(QueueProbe {
            conn: client.get_multiplexed_async_connection().await?,
        })
    }

    pub async fn sample(&self) {
        let mut conn = self.conn.clone();
        let read = async {
            let length: i64 = redis::cmd("XLEN")
                .arg(STREAM)
                .query_async(&mut conn)
                .await?;
            let dead: i64 = redis::cmd("XLEN").arg(DEAD).query_async(&mut conn).await?;
            let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(STREAM)
                .query_async(&mut conn)
                .await?;
            let lag = groups
                .iter()
                .find(|g| g.get("name").and_then(text).as_deref() == Some(GROUP))
                .and_then(|g| match g.get("lag") {
                    Some(Value::Int(n)) => Some(*n),
                    // Redis reports nil when the lag cannot be computed (after deletions): the
                    // entries not yet delivered are then at most the stream's length.
                    _ => None,
                })
                .unwrap_or(length);
            // The summary form: [count, smallest id, greatest id, consumers].
            let summary: Value = redis::cmd("XPENDING")
                .arg(STREAM)
                .arg(GROUP)
                .query_async(&mut conn)
                .await?;
            let (pending, oldest) = match summary {
                Value::Array(items) => (
                    match items.first() {
                        Some(Value::Int(n)) => *n,
                        _ => 0,
                    },
                    items.get(1).and_then(text),
                ),
                _ => (0, None),
            };
            Ok::<_, redis::RedisError>((length, dead, lag, pending, oldest))
        };
        match read.await {
            Ok((length, dead, lag, pending, oldest)) => {
                METRICS.queue_length.set(length);
                METRICS.dead_letter_length.set(dead);
                METRICS.queue_lag.set(lag);
                METRICS.queue_pending.set(pending);
                // An entry id is `<ms since the epoch>-<seq>`: its age is when it was added.
                let age = oldest
                    .and_then(|id| id.split('-').next()?.parse::<i64>().ok())
                    .map(|ms| (streamgate_core::now() as f64 - ms as f64 / 1000.0).max(0.0))
                    .unwrap_or(0.0);
                METRICS.queue_oldest_pending_age.set(age);
            }
            Err(e) => {
                METRICS.queue_scrape_errors.inc();
                tracing::warn!(error = %e, "cannot read the queue for metrics");
            }
        }
    }
}
