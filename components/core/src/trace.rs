//! W3C trace context (<https://www.w3.org/TR/trace-context/>): the `traceparent` that follows
//! one request from the app through the job stream to the native worker and back in its events
//! (docs/pipeline.md, docs/operations.md). Parsed as the specification asks of a version-00
//! reader: version `00` exactly, a later version by its first four fields (what the host keeps
//! too, so the app's trace id is the host's `request_id`); anything else is no trace context
//! at all, and the caller starts a fresh one. Written always as version `00`, as a hop that
//! forwards must. Randomness is the caller's.

use std::fmt;

/// The header (and job field, and event field) that carries it.
pub const HEADER: &str = "traceparent";

/// One `traceparent`: the trace every span of a request shares, the span that sent it, and
/// the trace flags (bit 0: sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

fn hex_digit(b: u8) -> Option<u8> {
    // Lowercase only: the specification makes a value with uppercase digits invalid.
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// A span id of the given random bytes, never the invalid all-zero one.
fn span_of(mut random: [u8; 8]) -> [u8; 8] {
    if random == [0; 8] {
        random[7] = 1;
    }
    random
}

impl TraceContext {
    /// Parses `<version>-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, lowercase; a
    /// version after `00` may append fields, which are ignored. `None` for version `ff`, any
    /// other length or digit, fields after a version-00 value, and an all-zero trace or span id.
    pub fn parse(text: &str) -> Option<TraceContext> {
        let mut parts = text.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let [version] = parse_hex::<1>(version)?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        let trace_id = parse_hex::<16>(trace).filter(|id| *id != [0; 16])?;
        let span_id = parse_hex::<8>(span).filter(|id| *id != [0; 8])?;
        let [flags] = parse_hex::<1>(flags)?;
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace from 24 random bytes (16 for the trace, 8 for the span), sampled.
    pub fn fresh(random: [u8; 24]) -> TraceContext {
        let mut trace_id: [u8; 16] = random[..16].try_into().expect("16 bytes");
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        TraceContext {
            trace_id,
            span_id: span_of(random[16..].try_into().expect("8 bytes")),
            flags: 1,
        }
    }

    /// The same trace, a new span (from 8 random bytes): what a hop passes on.
    pub fn child(&self, random: [u8; 8]) -> TraceContext {
        TraceContext {
            span_id: span_of(random),
            ..*self
        }
    }

    /// The 32 hex digits every log line of the request carries.
    pub fn trace_id(&self) -> String {
        self.trace_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn span_id(&self) -> String {
        self.span_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }
}

/// The `traceparent` text.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        write_hex(f, &self.trace_id)?;
        f.write_str("-")?;
        write_hex(f, &self.span_id)?;
        write!(f, "-{:02x}", self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_round_trips() {
        let trace = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.span_id(), "00f067aa0ba902b7");
        assert_eq!(trace.flags(), 1);
        assert_eq!(trace.to_string(), EXAMPLE);
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(
            TraceContext::parse(unsampled).unwrap().to_string(),
            unsampled
        );
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields_and_forwarded_as_00() {
        for text in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next",
        ] {
            let context = TraceContext::parse(text).expect(text);
            assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(
                context.to_string(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
        }
    }

    #[test]
    fn anything_but_a_valid_traceparent_is_refused() {
        let refused = [
            "",
            "00",
            // ff, which the specification forbids, and versions that are not two hex digits.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Uppercase, short, long, non-hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            // Extra fields (allowed only in later versions), other separators, spaces.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for text in refused {
            assert_eq!(TraceContext::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn fresh_and_child_contexts_are_valid() {
        let fresh = TraceContext::fresh([7; 24]);
        assert_eq!(fresh.trace_id(), "07".repeat(16));
        assert_eq!(fresh.span_id(), "07".repeat(8));
        assert_eq!(TraceContext::parse(&fresh.to_string()), Some(fresh));
        // Zero bytes from the random source still make a valid context.
        let zero = TraceContext::fresh([0; 24]);
        assert_eq!(TraceContext::parse(&zero.to_string()), Some(zero));

        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = parent.child([9; 8]);
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.span_id(), "09".repeat(8));
        assert_eq!(child.flags(), parent.flags());
        assert_eq!(
            TraceContext::parse(&parent.child([0; 8]).to_string()).map(|c| c.trace_id()),
            Some(parent.trace_id())
        );
    }
}
