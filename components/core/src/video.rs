//! Videos: the status lifecycle, gate rules and renditions, independent of storage.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;

/// `awaiting_upload → queued → transcoding → ready`, or `failed` from any state but `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    AwaitingUpload,
    Queued,
    Transcoding,
    Ready,
    Failed,
}

impl VideoStatus {
    pub const ALL: [VideoStatus; 5] = [
        Self::AwaitingUpload,
        Self::Queued,
        Self::Transcoding,
        Self::Ready,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingUpload => "awaiting_upload",
            Self::Queued => "queued",
            Self::Transcoding => "transcoding",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Statuses only move forward; a retried transcode may report `transcoding` again.
    pub fn can_move_to(self, next: VideoStatus) -> bool {
        use VideoStatus::*;
        matches!(
            (self, next),
            (AwaitingUpload, Queued)
                | (Queued, Transcoding)
                | (Transcoding, Transcoding)
                | (Transcoding, Ready)
                | (AwaitingUpload | Queued | Transcoding, Failed)
        )
    }

    /// The statuses from which a move to `next` is allowed (for conditional SQL updates).
    pub fn allowed_before(next: VideoStatus) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.can_move_to(next))
            .map(Self::as_str)
            .collect()
    }
}

/// Who may see a video at all. A ready video is public (whether one may *play* it is the
/// gate's business); one that is not ready, its status, progress and failure reason, is its
/// owner's alone, so a stranger cannot tell it from a video that does not exist.
pub fn visible_to(status: &str, owner: &str, viewer: Option<&str>) -> bool {
    status == VideoStatus::Ready.as_str() || viewer.is_some_and(|v| v.eq_ignore_ascii_case(owner))
}

/// The code a failed video is stored with when the worker named none (workers before codes).
pub const GENERIC_FAILURE_CODE: &str = "transcode_failed";

/// Longest failure code kept.
const MAX_FAILURE_CODE_CHARS: usize = 64;

/// Longest failure sentence kept: a sentence for the owner, never a log.
pub const MAX_FAILURE_CHARS: usize = 500;

/// The failure code to store for what the worker reported: its code when it is a snake_case
/// word (clients match on it), else [`GENERIC_FAILURE_CODE`].
pub fn failure_code(reported: Option<&str>) -> &str {
    match reported {
        Some(code)
            if !code.is_empty()
                && code.len() <= MAX_FAILURE_CODE_CHARS
                && code.starts_with(|c: char| c.is_ascii_lowercase())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            code
        }
        _ => GENERIC_FAILURE_CODE,
    }
}

/// The failure sentence to store: the worker's, trimmed and cut to [`MAX_FAILURE_CHARS`]
/// (an older worker may send a long tool message), or a generic one when it sent none.
pub fn failure_sentence(reported: Option<&str>) -> String {
    let reported = reported.map(str::trim).unwrap_or_default();
    if reported.is_empty() {
        return "the video could not be transcoded".to_string();
    }
    if reported.chars().count() <= MAX_FAILURE_CHARS {
        return reported.to_string();
    }
    let mut cut: String = reported.chars().take(MAX_FAILURE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStandard {
    Erc721,
    Erc1155,
    Erc20,
}

/// A rule as stored and as answered: who may watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRule {
    pub chain_id: u64,
    pub contract: String,
    pub standard: TokenStandard,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_balance: Option<String>,
}

/// At most this many rules per video: each is an RPC call at playback.
pub const MAX_GATE_RULES: usize = 16;

fn invalid(i: usize, why: String) -> ApiError {
    ApiError::new(422, "invalid_gate", format!("gate rule {i}: {why}"))
}

fn decimal(i: usize, field: &str, value: &str) -> Result<U256, ApiError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 78 {
        return Err(invalid(
            i,
            format!("`{field}` must be a decimal integer string, got `{value}`"),
        ));
    }
    U256::from_str_radix(value, 10).map_err(|_| invalid(i, format!("`{field}` is out of range")))
}

/// Checks rules as a creator sends them, against the chains this deployment accepts; answers
/// the rules normalised (decimal strings without leading zeros, `min_balance` defaulted to 1).
pub fn validate_gate(
    rules: Vec<GateRule>,
    chains: &BTreeMap<u64, String>,
) -> Result<Vec<GateRule>, ApiError> {
    if rules.len() > MAX_GATE_RULES {
        return Err(ApiError::new(
            422,
            "invalid_gate",
            format!("a gate has at most {MAX_GATE_RULES} rules"),
        ));
    }
    rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            if !chains.contains_key(&rule.chain_id) {
                return Err(ApiError::new(
                    422,
                    "chain_not_supported",
                    format!(
                        "gate rule {i}: chain {} is not one this service reads",
                        rule.chain_id
                    ),
                ));
            }
            let contract = Address::parse_checksummed(&rule.contract, None).map_err(|_| {
                invalid(
                    i,
                    format!(
                        "`contract` must be an EIP-55 checksummed address, got `{}`",
                        rule.contract
                    ),
                )
            })?;
            let token_id = match (rule.standard, &rule.token_id) {
                (TokenStandard::Erc20, Some(_)) => {
                    return Err(invalid(i, "an erc20 rule has no `token_id`".into()))
                }
                (TokenStandard::Erc1155, None) => {
                    return Err(invalid(i, "an erc1155 rule needs a `token_id`".into()))
                }
                (_, Some(id)) => Some(decimal(i, "token_id", id)?.to_string()),
                (_, None) => None,
            };
            let min_balance = match &rule.min_balance {
                Some(m) => decimal(i, "min_balance", m)?,
                None => U256::from(1),
            };
            if min_balance.is_zero() {
                return Err(invalid(i, "`min_balance` must be at least 1".into()));
            }
            Ok(GateRule {
                chain_id: rule.chain_id,
                contract: contract.to_checksum(None),
                standard: rule.standard,
                token_id,
                min_balance: Some(min_balance.to_string()),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub uri: String,
    pub duration: f64,
}

/// One rung of the ladder, as the worker reports it and the playlists render it. `bandwidth`,
/// `average_bandwidth` and `codecs` are this track's own: when the video has separate
/// [`AudioTrack`]s, the HLS master adds theirs to each variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub frame_rate: f64,
    pub codecs: String,
    pub init: String,
    pub segments: Vec<Segment>,
}

/// An audio track of its own (CMAF: audio and video in separate files), shared by every
/// rendition. Players that check each stream's codecs on its own (dash.js's MediaCapabilities
/// check, HLS players switching video without refetching audio) need audio this way rather
/// than muxed into each rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioTrack {
    pub name: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub init: String,
    pub segments: Vec<Segment>,
}

/// Checks a video's tracks from the worker: names and paths safe to put in URLs, names unique
/// across video and audio (each is a media playlist `/stream/<id>/<name>.m3u8`), numbers sane.
pub fn validate_tracks(renditions: &[Rendition], audio: &[AudioTrack]) -> Result<(), ApiError> {
    let bad = |why: String| ApiError::new(422, "invalid_renditions", why);
    if renditions.is_empty() {
        return Err(bad("a ready video has at least one rendition".into()));
    }
    let safe = |s: &str| {
        !s.is_empty()
            && !s.starts_with('/')
            && !s
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    let tracks = renditions
        .iter()
        .map(|r| (&r.name, &r.init, &r.segments, "rendition"))
        .chain(
            audio
                .iter()
                .map(|a| (&a.name, &a.init, &a.segments, "audio track")),
        );
    let mut names = std::collections::BTreeSet::new();
    for (name, init, segments, kind) in tracks {
        if !safe(name) || name.contains('/') {
            return Err(bad(format!("{kind} name `{name}` is not a plain name")));
        }
        if !names.insert(name.as_str()) {
            return Err(bad(format!("two tracks are named `{name}`")));
        }
        if !safe(init) || segments.iter().any(|s| !safe(&s.uri)) {
            return Err(bad(format!("{kind} `{name}` has an unsafe path")));
        }
        if segments.is_empty()
            || segments
                .iter()
                .any(|s| !(s.duration > 0.0 && s.duration.is_finite()))
        {
            return Err(bad(format!(
                "{kind} `{name}` needs segments with positive durations"
            )));
        }
    }
    for r in renditions {
        let fps_ok = r.frame_rate.is_finite() && r.frame_rate > 0.0;
        if r.width == 0 || r.height == 0 || r.bandwidth == 0 || !fps_ok {
            return Err(bad(format!(
                "rendition `{}` has a zero size, bandwidth or frame rate",
                r.name
            )));
        }
    }
    for a in audio {
        if a.bandwidth == 0 || a.channels == 0 || a.sample_rate == 0 || a.codecs.is_empty() {
            return Err(bad(format!(
                "audio track `{}` has no codecs or a zero bandwidth, channel count or sample rate",
                a.name
            )));
        }
    }
    Ok(())
}

/// Lists page by (created_at, id), newest first; the cursor is the last item's key, opaque to
/// clients (hex of `"<created_at>:<id>"`).
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    alloy_primitives::hex::encode(format!("{created_at}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "invalid_cursor",
            "the cursor is not one this service issued",
        )
    };
    let bytes = alloy_primitives::hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// The longest title a video may have, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest description a video may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::new(
            422,
            "invalid_video",
            format!("`{field}` must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::new(
            422,
            "invalid_video",
            format!("`{field}` is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// A new video's title (not blank) and description: 422 `invalid_video` naming the field.
pub fn validate_text(title: &str, description: Option<&str>) -> Result<(), ApiError> {
    check_text("title", title, MAX_TITLE_CHARS, true)?;
    if let Some(d) = description {
        check_text("description", d, MAX_DESCRIPTION_CHARS, false)?;
    }
    Ok(())
}

/// 429 `too_many_pending_uploads`: the wallet already has `max` videos awaiting their upload;
/// `retry_after` is when the oldest of them stops counting.
pub fn too_many_pending(max: i64, retry_after: u64) -> ApiError {
    ApiError::new(
        429,
        "too_many_pending_uploads",
        format!(
            "this wallet already has as many videos waiting for their upload as it may ({max}): \
             finish uploading one of them, or delete one you no longer need \
             (DELETE /api/v1/videos/{{id}}), then create this one again"
        ),
    )
    .with_retry_after(retry_after)
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_query", message)
}

/// A list request (`GET /api/v1/videos`): whose videos, in which status, how many, after which
/// cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Checksummed.
    pub owner: Option<String>,
    pub status: Option<VideoStatus>,
    pub limit: i64,
    pub after: Option<(i64, String)>,
}

impl ListQuery {
    /// Reads `owner`, `status`, `limit` (1 to 100, default 20) and `cursor`, in that order;
    /// `param` answers a parameter's first non-empty value, decoded. 400 `invalid_query` (or
    /// `invalid_cursor`) naming what is wrong.
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<ListQuery, ApiError> {
        let owner = param("owner")
            .map(|o| {
                o.parse::<Address>()
                    .map(|a| a.to_checksum(None))
                    .map_err(|_| invalid_query(format!("`owner` is not an address: `{o}`")))
            })
            .transpose()?;
        let status = param("status")
            .map(|s| {
                VideoStatus::parse(&s).ok_or_else(|| {
                    invalid_query(format!(
                        "`status` must be one of the video statuses, got `{s}`"
                    ))
                })
            })
            .transpose()?;
        let limit = match param("limit") {
            None => 20,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| invalid_query("`limit` must be between 1 and 100"))?,
        };
        let after = param("cursor")
            .map(|cursor| decode_cursor(&cursor))
            .transpose()?;
        Ok(ListQuery {
            owner,
            status,
            limit,
            after,
        })
    }

    /// The query as `reader` (the signed-in caller's checksummed address) may run it, and
    /// whether it lists the reader's own videos. Videos that are not ready are their owner's
    /// alone: listed only to the owner, signed in, asking for their own (`owner=` their
    /// address). Everyone else lists ready videos; asking them for another status is a
    /// mistake worth saying, not an empty page.
    pub fn for_reader(self, reader: Option<&str>) -> Result<(ListQuery, bool), ApiError> {
        let own = self.owner.is_some() && self.owner.as_deref() == reader;
        let status = match self.status {
            _ if own => self.status,
            None | Some(VideoStatus::Ready) => Some(VideoStatus::Ready),
            Some(other) => {
                return Err(invalid_query(format!(
                    "only a video's owner sees videos that are `{}`: sign in and list your own \
                     with `owner=<your address>`",
                    other.as_str()
                )))
            }
        };
        Ok((ListQuery { status, ..self }, own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains() -> BTreeMap<u64, String> {
        BTreeMap::from([(31337, "http://127.0.0.1:8545".to_string())])
    }

    fn rule(standard: TokenStandard, token_id: Option<&str>) -> GateRule {
        GateRule {
            chain_id: 31337,
            contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
            standard,
            token_id: token_id.map(str::to_string),
            min_balance: None,
        }
    }

    #[test]
    fn titles_and_descriptions() {
        assert!(validate_text("A film", None).is_ok());
        assert!(validate_text(&"t".repeat(200), Some(&"d".repeat(5000))).is_ok());
        for (title, description, message) in [
            ("  ", None, "`title` must not be empty"),
            (
                &*"t".repeat(201),
                None,
                "`title` is longer than 200 characters",
            ),
            (
                "A film",
                Some(&*"d".repeat(5001)),
                "`description` is longer than 5000 characters",
            ),
        ] {
            let e = validate_text(title, description).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.error.as_str()),
                (422, "invalid_video", message)
            );
        }
        // Characters, not bytes; an empty description is fine.
        assert!(validate_text(&"é".repeat(200), Some("")).is_ok());
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        ListQuery::parse(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn list_queries_parse_in_order_and_say_what_is_wrong() {
        let q = parse(&[]).unwrap();
        assert_eq!(
            (q.owner, q.status, q.limit, q.after),
            (None, None, 20, None)
        );
        let q = parse(&[
            ("owner", "0x8ba1f109551bd432803012645ac136ddd64dba72"),
            ("status", "failed"),
            ("limit", "100"),
        ])
        .unwrap();
        assert_eq!(
            q.owner.as_deref(),
            Some("0x8ba1f109551bD432803012645Ac136ddd64DBA72")
        );
        assert_eq!((q.status, q.limit), (Some(VideoStatus::Failed), 100));
        let cursor = encode_cursor(7, "v1");
        let q = parse(&[("cursor", &cursor)]).unwrap();
        assert_eq!(q.after, Some((7, "v1".to_string())));
        for (bad, code, message) in [
            (
                &[("owner", "alice")][..],
                "invalid_query",
                "`owner` is not an address: `alice`",
            ),
            (
                &[("status", "done")][..],
                "invalid_query",
                "`status` must be one of the video statuses, got `done`",
            ),
            (
                &[("limit", "0")][..],
                "invalid_query",
                "`limit` must be between 1 and 100",
            ),
            (
                &[("limit", "101")][..],
                "invalid_query",
                "`limit` must be between 1 and 100",
            ),
            (
                &[("cursor", "zz")][..],
                "invalid_cursor",
                "the cursor is not one this service issued",
            ),
            // The owner is read first.
            (
                &[("owner", "x"), ("limit", "0")][..],
                "invalid_query",
                "`owner` is not an address: `x`",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.status, e.code, e.error.as_str()), (400, code, message));
        }
    }

    #[test]
    fn only_the_owner_lists_what_is_not_ready() {
        let alice = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
        let query = |owner: Option<&str>, status| ListQuery {
            owner: owner.map(str::to_string),
            status,
            limit: 20,
            after: None,
        };
        // Her own, any status (or none).
        let (q, own) = query(Some(alice), Some(VideoStatus::Failed))
            .for_reader(Some(alice))
            .unwrap();
        assert!(own);
        assert_eq!(q.status, Some(VideoStatus::Failed));
        let (q, own) = query(Some(alice), None).for_reader(Some(alice)).unwrap();
        assert_eq!((q.status, own), (None, true));
        // Anyone else: ready videos only, and asking for more is 400.
        for reader in [None, Some("0x0000000000000000000000000000000000000001")] {
            for owner in [None, Some(alice)] {
                let (q, own) = query(owner, None).for_reader(reader).unwrap();
                assert_eq!((q.status, own), (Some(VideoStatus::Ready), false));
                let e = query(owner, Some(VideoStatus::Queued))
                    .for_reader(reader)
                    .unwrap_err();
                assert_eq!((e.status, e.code), (400, "invalid_query"));
                assert!(e.error.contains("`queued`"), "{}", e.error);
            }
        }
    }

    #[test]
    fn too_many_pending_says_how_many_and_when() {
        let e = too_many_pending(5, 30);
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (429, "too_many_pending_uploads", Some(30))
        );
        assert!(e.error.contains("as it may (5)"), "{}", e.error);
        assert!(
            e.error.contains("DELETE /api/v1/videos/{id}"),
            "{}",
            e.error
        );
    }

    #[test]
    fn lifecycle_only_moves_forward() {
        use VideoStatus::*;
        assert!(AwaitingUpload.can_move_to(Queued));
        assert!(Queued.can_move_to(Transcoding));
        assert!(Transcoding.can_move_to(Ready));
        assert!(Transcoding.can_move_to(Failed));
        assert!(!Ready.can_move_to(Failed));
        assert!(!Ready.can_move_to(Queued));
        assert!(!Queued.can_move_to(AwaitingUpload));
        assert!(!Failed.can_move_to(Queued));
        assert_eq!(VideoStatus::allowed_before(Queued), vec!["awaiting_upload"]);
        assert_eq!(VideoStatus::parse("ready"), Some(Ready));
        assert_eq!(VideoStatus::parse("done"), None);
    }

    #[test]
    fn only_ready_videos_are_seen_by_anyone_but_the_owner() {
        let owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        let other = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        for status in VideoStatus::ALL {
            let s = status.as_str();
            let public = status == VideoStatus::Ready;
            assert_eq!(visible_to(s, owner, None), public, "{s}, anonymous");
            assert_eq!(visible_to(s, owner, Some(other)), public, "{s}, a stranger");
            assert!(visible_to(s, owner, Some(owner)), "{s}, the owner");
            assert!(
                visible_to(s, owner, Some(&owner.to_lowercase())),
                "{s}, any case"
            );
        }
    }

    #[test]
    fn failure_codes_are_snake_case_words_or_the_generic_one() {
        assert_eq!(
            failure_code(Some("unsupported_format")),
            "unsupported_format"
        );
        assert_eq!(failure_code(Some("too_long_2h")), "too_long_2h");
        for bad in [
            None,
            Some(""),
            Some("Unsupported"),
            Some("_x"),
            Some("9lives"),
            Some("has space"),
            Some("path/like"),
            Some("x-y"),
        ] {
            assert_eq!(failure_code(bad), GENERIC_FAILURE_CODE, "{bad:?}");
        }
        assert_eq!(failure_code(Some(&"a".repeat(65))), GENERIC_FAILURE_CODE);
    }

    #[test]
    fn failure_sentences_are_trimmed_defaulted_and_cut() {
        assert_eq!(failure_sentence(Some("  not a video \n")), "not a video");
        assert_eq!(failure_sentence(None), "the video could not be transcoded");
        assert_eq!(
            failure_sentence(Some(" ")),
            "the video could not be transcoded"
        );
        let long = "é".repeat(2000);
        let cut = failure_sentence(Some(&long));
        assert_eq!(cut.chars().count(), MAX_FAILURE_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn gate_rules_are_validated_and_normalised() {
        let ok = validate_gate(vec![rule(TokenStandard::Erc1155, Some("007"))], &chains()).unwrap();
        assert_eq!(ok[0].token_id.as_deref(), Some("7"));
        assert_eq!(ok[0].min_balance.as_deref(), Some("1"));
        assert!(validate_gate(vec![rule(TokenStandard::Erc721, None)], &chains()).is_ok());

        let code = |rules: Vec<GateRule>| validate_gate(rules, &chains()).unwrap_err().code;
        assert_eq!(
            code(vec![rule(TokenStandard::Erc1155, None)]),
            "invalid_gate"
        );
        assert_eq!(
            code(vec![rule(TokenStandard::Erc20, Some("1"))]),
            "invalid_gate"
        );
        assert_eq!(
            code(vec![rule(TokenStandard::Erc721, Some("-1"))]),
            "invalid_gate"
        );
        assert_eq!(
            code(vec![rule(TokenStandard::Erc721, Some("0x10"))]),
            "invalid_gate"
        );
        let mut lower = rule(TokenStandard::Erc20, None);
        lower.contract = lower.contract.to_lowercase().replace("0X", "0x");
        assert_eq!(code(vec![lower]), "invalid_gate", "not checksummed");
        let mut other_chain = rule(TokenStandard::Erc20, None);
        other_chain.chain_id = 1;
        assert_eq!(code(vec![other_chain]), "chain_not_supported");
        let mut zero = rule(TokenStandard::Erc20, None);
        zero.min_balance = Some("0".into());
        assert_eq!(code(vec![zero]), "invalid_gate");
        assert_eq!(
            code(vec![rule(TokenStandard::Erc20, None); 17]),
            "invalid_gate"
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(1700000000, "abc123");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1700000000, "abc123".to_string())
        );
        assert_eq!(decode_cursor("zz").unwrap_err().code, "invalid_cursor");
        assert_eq!(
            decode_cursor(&alloy_primitives::hex::encode("nocolon"))
                .unwrap_err()
                .code,
            "invalid_cursor"
        );
    }

    #[test]
    fn rendition_paths_must_be_safe() {
        let r = Rendition {
            name: "720p".into(),
            width: 1280,
            height: 720,
            bandwidth: 1,
            average_bandwidth: 1,
            frame_rate: 30.0,
            codecs: "avc1.64001f".into(),
            init: "720p/init.mp4".into(),
            segments: vec![Segment {
                uri: "720p/seg_00001.m4s".into(),
                duration: 4.0,
            }],
        };
        assert!(validate_tracks(std::slice::from_ref(&r), &[]).is_ok());
        for bad in ["../x.m4s", "/etc/passwd", "720p//a", "a/./b", "a?b"] {
            let mut b = r.clone();
            b.segments[0].uri = bad.into();
            assert!(validate_tracks(&[b], &[]).is_err(), "{bad}");
        }
        assert!(validate_tracks(&[], &[]).is_err());
    }

    #[test]
    fn audio_tracks_are_checked_like_renditions_and_names_are_unique() {
        let video = Rendition {
            name: "360p".into(),
            width: 640,
            height: 360,
            bandwidth: 1,
            average_bandwidth: 1,
            frame_rate: 30.0,
            codecs: "avc1.64001e".into(),
            init: "360p/init.mp4".into(),
            segments: vec![Segment {
                uri: "360p/seg_00001.m4s".into(),
                duration: 4.0,
            }],
        };
        let audio = AudioTrack {
            name: "audio".into(),
            bandwidth: 130_000,
            average_bandwidth: 128_000,
            codecs: "mp4a.40.2".into(),
            channels: 2,
            sample_rate: 48_000,
            init: "audio/init.mp4".into(),
            segments: vec![Segment {
                uri: "audio/seg_00001.m4s".into(),
                duration: 4.011,
            }],
        };
        let check = |a: AudioTrack| validate_tracks(std::slice::from_ref(&video), &[a]);
        assert!(check(audio.clone()).is_ok());
        let same_name = AudioTrack {
            name: "360p".into(),
            ..audio.clone()
        };
        assert!(check(same_name).unwrap_err().error.contains("two tracks"));
        let traversal = AudioTrack {
            init: "../init.mp4".into(),
            ..audio.clone()
        };
        assert!(check(traversal).unwrap_err().error.contains("unsafe path"));
        let silent = AudioTrack {
            channels: 0,
            ..audio.clone()
        };
        assert!(check(silent).is_err());
        let empty = AudioTrack {
            segments: vec![],
            ..audio
        };
        assert!(check(empty).is_err());
    }
}
