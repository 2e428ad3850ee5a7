//! Blanking secrets out of text that came from a server or that we are about
//! to show: the secrets a call carried, and anything that looks like an
//! account key, a SAS, a client secret or an access token.

use atsprov_model::connstr::{self, Segment};

/// What replaces a secret.
const BLANK: &str = "***";

/// The secrets a connection string carries: the whole text, and its
/// `AccountKey` value (with and without base64 padding), so a server that
/// echoes the bare key back does not show it either. Lenient on purpose: the
/// key is found even in a string the strict parser would refuse.
pub(crate) fn connection_string_secrets(text: &str) -> Vec<&str> {
    let mut secrets = vec![text];
    for segment in connstr::segments(text) {
        let Segment::Pair { key, value } = segment else {
            continue;
        };
        if !key.eq_ignore_ascii_case("AccountKey") {
            continue;
        }
        secrets.push(value);
        let unpadded = value.trim_end_matches('=');
        if unpadded != value {
            secrets.push(unpadded);
        }
    }
    secrets
}

/// Blanks out every occurrence of the given secrets, and (names matched in
/// any case) the value of any `AccountKey=`, `SharedAccessSignature=`,
/// `client_secret=` or `access_token=`, any JSON `"access_token": "…"`, and
/// whatever follows `Bearer `.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    // Longest first, so a secret that contains another is blanked whole.
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret, BLANK);
    }
    for marker in [
        "accountkey=",
        "sharedaccesssignature=",
        "client_secret=",
        "access_token=",
        "bearer ",
        "\"access_token\"",
    ] {
        out = blank_values_after(&out, marker);
    }
    out
}

/// Blanks the value that follows each case-insensitive occurrence of `marker`.
/// For a JSON key (`"name"`) the value is the string after the colon.
fn blank_values_after(text: &str, marker: &str) -> String {
    let json_key = marker.starts_with('"');
    let mut out = text.to_owned();
    let mut from = 0;
    loop {
        // ASCII lowercasing keeps every byte offset, so positions found in
        // the lowered copy are positions in `out`.
        let lower = out.to_ascii_lowercase();
        let Some(pos) = lower.get(from..).and_then(|rest| rest.find(marker)) else {
            break;
        };
        let mut start = from + pos + marker.len();
        let rest = &out[start..];
        let skipped = if json_key {
            let after = rest.trim_start();
            let Some(after) = after.strip_prefix(':') else {
                from = start;
                continue;
            };
            let after = after.trim_start();
            let Some(after) = after.strip_prefix('"') else {
                from = start;
                continue;
            };
            rest.len() - after.len()
        } else {
            rest.len() - rest.trim_start_matches(' ').len()
        };
        start += skipped;
        let end = out[start..]
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        ';' | '"' | '\'' | '&' | ',' | '}' | ')' | ']' | '<' | '\\'
                    )
            })
            .map_or(out.len(), |e| start + e);
        if end > start && &out[start..end] != BLANK {
            out.replace_range(start..end, BLANK);
            from = start + BLANK.len();
        } else {
            from = start;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_are_blanked_in_any_case_and_bare() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S2V5LTEyMw==";
        let secrets = connection_string_secrets(cs);
        assert_eq!(secrets, [cs, "S2V5LTEyMw==", "S2V5LTEyMw"]);
        for text in [
            "the key S2V5LTEyMw== is wrong",
            "the key S2V5LTEyMw is wrong",
            "accountkey=S2V5LTEyMw== rejected",
            "ACCOUNTKEY=other-key-9 rejected",
            "AccountKey=other-key-9",
        ] {
            let out = scrub(text, &secrets);
            assert!(!out.contains("S2V5LTEyMw"), "{out}");
            assert!(!out.contains("other-key-9"), "{out}");
        }
        assert_eq!(
            scrub("x accountKey=abc;y sharedaccesssignature=sv=1&z", &[]),
            "x accountKey=***;y sharedaccesssignature=***&z"
        );
        // A lenient parse: a key in a string the strict parser refuses.
        assert!(connection_string_secrets("accountkey = abcd ;x").contains(&"abcd"));
    }

    #[test]
    fn access_tokens_are_blanked_in_text_json_and_forms() {
        let cases = [
            (
                "Authorization: Bearer eyJabc.def-ghi",
                "Authorization: Bearer ***",
            ),
            ("bearer  eyJabc was refused", "bearer  *** was refused"),
            (
                r#"{"message":"token Bearer eyJabc invalid"}"#,
                r#"{"message":"token Bearer *** invalid"}"#,
            ),
            (
                r#"{"access_token" : "eyJabc","token_type":"bearer"}"#,
                r#"{"access_token" : "***","token_type":"bearer"}"#,
            ),
            ("a=1&access_token=eyJabc&b=2", "a=1&access_token=***&b=2"),
            ("the access_token is bad", "the access_token is bad"),
            ("Bearer", "Bearer"),
            ("Bearer ", "Bearer "),
        ];
        for (text, expected) in cases {
            assert_eq!(scrub(text, &[]), expected, "{text}");
        }
        assert_eq!(scrub("x our-token-1 y", &["our-token-1"]), "x *** y");
    }

    #[test]
    fn scrubbing_never_panics_on_odd_text() {
        for text in [
            "bearer é",
            "ÉBEARER ü",
            "\"access_token\":",
            "accountkey=",
            "ß",
        ] {
            let _ = scrub(text, &["ßß"]);
        }
    }
}
