//! The request id that follows a video from the app through the job and back in the events:
//! a W3C trace context (streamgate_core::trace, docs/operations.md "Following one request"),
//! and the JSON log format that puts its `trace_id` on every line logged inside a job.

use std::fmt;

use serde_json::{Map, Value};
use streamgate_core::trace::TraceContext;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

/// A new trace, for work no request started (or whose request had no valid context).
pub fn fresh() -> TraceContext {
    TraceContext::fresh(random())
}

/// The same trace, a new span: what this side sends on.
pub fn child(parent: &TraceContext) -> TraceContext {
    parent.child(random())
}

/// `text`'s trace context if it is a valid `traceparent`, else a fresh trace.
pub fn continue_or_fresh(text: Option<&str>) -> TraceContext {
    text.and_then(TraceContext::parse).unwrap_or_else(fresh)
}

/// `--log-format json`: one object per line, `timestamp`, `level`, the fields of the spans the
/// line is logged in (so `trace_id` inside a job), then the event's own fields and `target`.
/// The fields are at the top level, as with `flatten_event`, so a collector filters every line
/// of one request on `trace_id` whatever span it came from. Span fields are recorded by
/// `JsonFields` (set with [`tracing_subscriber::fmt::SubscriberBuilder::fmt_fields`]).
pub struct FlatJson;

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        line.insert(
            "level".into(),
            event.metadata().level().as_str().to_string().into(),
        );
        if let Some(scope) = ctx.event_scope() {
            // Outermost first: an inner span's field of the same name wins.
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        line.insert("target".into(), event.metadata().target().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// A writer for a test's tracing subscriber that keeps what was logged (the worker's logs are
/// part of what its tests check: trace ids, levels).
#[cfg(test)]
pub(crate) mod captured {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// Everything written so far.
        pub(crate) fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use captured::Captured;

    #[test]
    fn every_line_in_a_job_carries_its_trace_id_at_the_top_level() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(FlatJson)
            .finish();
        let trace =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("job", trace_id = %trace.trace_id());
            let _in = span.enter();
            tracing::info!(video = "v1", attempt = 2u64, "probed");
            let inner = tracing::info_span!("rung", name = "360p");
            let _inner = inner.enter();
            tracing::warn!(error = %"x\"y", "inside");
        });
        let text = String::from_utf8(captured.bytes()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0].get("trace_id"), None);
        assert_eq!(lines[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(lines[1]["message"], "probed");
        assert_eq!(lines[1]["video"], "v1");
        assert_eq!(lines[1]["attempt"], 2);
        assert_eq!(lines[1]["level"], "INFO");
        assert!(lines[1]["timestamp"].as_str().unwrap().len() >= 20);
        assert_eq!(lines[2]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(lines[2]["name"], "360p");
        assert_eq!(lines[2]["error"], "x\"y");
        assert_eq!(lines[2]["level"], "WARN");
    }
}
