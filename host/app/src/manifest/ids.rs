//! Identifiers (spin-serde `id.rs`): one or more words separated by a delimiter; each word
//! starts with an ASCII letter, is alphanumeric, and is all lowercase or all UPPERCASE.
//! Deserialising the newtypes validates, so TOML errors point at the offending key or value.

use serde::Deserialize;

/// Checks an ID; `lower_only` additionally rejects UPPERCASE words.
pub(super) fn check_id(id: &str, delim: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    // Using the other common separator is by far the most likely mistake: say so directly.
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for word in id.split(delim) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower_only && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// A component ID (kebab-case). Deserialising validates, so TOML errors point at the key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct KebabId(pub(super) String);

impl TryFrom<String> for KebabId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        check_id(&id, '-', false).map(|()| Self(id))
    }
}

/// A variable name (lower snake_case).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct LowerSnakeId(pub(super) String);

impl TryFrom<String> for LowerSnakeId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        check_id(&id, '_', true).map(|()| Self(id))
    }
}

/// A key-value store or SQLite database label: kebab-case or snake_case.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Label(pub(super) String);

impl TryFrom<String> for Label {
    type Error = String;
    fn try_from(label: String) -> Result<Self, String> {
        if check_id(&label, '-', false).is_ok() || check_id(&label, '_', false).is_ok() {
            Ok(Self(label))
        } else {
            Err(format!("expected kebab-case or snake_case; got {label:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules_match_spin_serde() {
        // spin-serde / manifest v2.rs `test_valid_snake_ids` / `test_invalid_snake_ids`.
        for valid in ["default", "mixed_CASE_words", "letters1_then2_numbers345"] {
            assert!(check_id(valid, '_', false).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "kebab-case",
            "_leading_underscore",
            "trailing_underscore_",
            "double__underscore",
            "1initial_number",
            "unicode_snowpeople☃☃☃",
            "mIxEd_case",
            "MiXeD_case",
        ] {
            assert!(check_id(invalid, '_', false).is_err(), "{invalid}");
        }
        assert!(check_id("mixed_CASE_words", '_', true).is_err());
    }
}
