//! `parse_message` on arbitrary input: it must never panic, and a message it accepts must
//! re-render (`Display`) to a text that parses back to the same message — the property
//! `siwe::tests::mutations_never_panic_and_round_trip` checks on a fixed set of mutations.
//!
//! Bytes that are not UTF-8 are converted lossily (U+FFFD), as the API's JSON layer would
//! never hand the parser anything but a `str`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::siwe::{parse_message, MessageProblem, SiweError, MAX_MESSAGE_BYTES};

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});

fn check(text: &str) {
    let Ok(message) = parse_message(text) else {
        return;
    };
    let rendered = message.to_string();
    let again = parse_message(&rendered);
    if rendered.len() > MAX_MESSAGE_BYTES {
        // The rendering is at most one byte longer than the input (viem's single blank line
        // becomes the ABNF's two), so only an input at the size limit can get here.
        assert!(
            matches!(&again, Err(SiweError::InvalidMessage(e)) if e.problem == MessageProblem::TooLong),
            "{text:?}"
        );
        return;
    }
    assert_eq!(
        again.as_ref(),
        Ok(&message),
        "input {text:?}, rendered {rendered:?}"
    );
}
