//! Ownership marker and credential fingerprint, kept in a connection's description.
//!
//! The API never returns an account key and connections have no labels, so
//! the only place atsprov can remember "I wrote this, with these credentials"
//! on the connection itself is the tail of its description:
//!
//! ```text
//! Sales EU tables [atsprov fp=3f9a0c1d2e4b5a69]
//! Sales EU tables [atsprov fp=3f9a0c1d2e4b5a69 owner=team-a]
//! ```
//!
//! With a manifest `owner`, the marker carries it, so several manifests can
//! share a sandbox: each manages only the connections whose marker names its
//! owner, and a marker without an owner belongs to manifests without one.
//!
//! The fingerprint is the first 64 bits of a SHA-256 over a domain tag, the
//! organization, sandbox and connection name, and the connection string. The
//! salt makes equal keys on different connections look different, and 64
//! bits of a hash of a 512-bit random key reveal nothing usable about it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::secret::Secret;

const TAG_OPEN: &str = "[atsprov fp=";
const FINGERPRINT_HEX_LEN: usize = 16;

/// A credential fingerprint: 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a connection string for one (org, sandbox, name).
    pub fn of(org_id: &str, sandbox: &str, name: &str, connection_string: &Secret) -> Self {
        let mut hasher = Sha256::new();
        for part in [
            "atsprov.fingerprint/v1",
            org_id,
            sandbox,
            name,
            connection_string.expose(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(FINGERPRINT_HEX_LEN);
        for byte in &digest[..FINGERPRINT_HEX_LEN / 2] {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        Self(hex)
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest owner name a marker carries.
pub const OWNER_MAX_LEN: usize = 64;

/// True for a valid owner name: 1 to 64 ASCII letters, digits, `.`, `_` or `-`,
/// so that it cannot end the marker early or hide in white space.
pub fn is_valid_owner(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= OWNER_MAX_LEN
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A description split into the user's text and atsprov's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked<'a> {
    /// The user's own text, as written.
    pub text: &'a str,
    /// The fingerprint, when the description carries atsprov's marker.
    pub fingerprint: Option<Fingerprint>,
    /// The owner the marker names; `None` for a marker without one (or no marker).
    pub owner: Option<&'a str>,
}

impl Marked<'_> {
    /// True when the marker is there and names exactly `owner` (both `None`
    /// counts: a marker without an owner belongs to manifests without one).
    pub fn is_managed_by(&self, owner: Option<&str>) -> bool {
        self.fingerprint.is_some() && self.owner == owner
    }
}

/// The description atsprov writes: the user's text, then the marker.
pub fn mark(text: &str, fingerprint: &Fingerprint, owner: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 48);
    out.push_str(text);
    if !text.is_empty() {
        out.push(' ');
    }
    out.push_str(TAG_OPEN);
    out.push_str(fingerprint.as_str());
    if let Some(owner) = owner {
        out.push_str(" owner=");
        out.push_str(owner);
    }
    out.push(']');
    out
}

/// Splits a live description into the user's text and atsprov's marker.
pub fn parse(description: &str) -> Marked<'_> {
    let unmarked = Marked {
        text: description,
        fingerprint: None,
        owner: None,
    };
    // Trailing white space (an edit in the UI) does not hide the marker.
    let Some(body) = description.trim_end().strip_suffix(']') else {
        return unmarked;
    };
    let Some(start) = body.rfind(TAG_OPEN) else {
        return unmarked;
    };
    let inside = &body[start + TAG_OPEN.len()..];
    let (hex, owner) = match inside.split_once(" owner=") {
        Some((hex, owner)) if is_valid_owner(owner) => (hex, Some(owner)),
        Some(_) => return unmarked,
        None => (inside, None),
    };
    let well_formed = hex.len() == FINGERPRINT_HEX_LEN
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return unmarked;
    }
    let text = &description[..start];
    let text = text.strip_suffix(' ').unwrap_or(text);
    Marked {
        text,
        fingerprint: Some(Fingerprint(hex.to_owned())),
        owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(cs: &str) -> Fingerprint {
        Fingerprint::of("ORG@AdobeOrg", "prod", "sales", &Secret::new(cs))
    }

    #[test]
    fn mark_then_parse_round_trips() {
        let f = fp("AccountKey=abc");
        for text in [
            "",
            "Sales EU tables",
            "ends with ] bracket",
            "[atsprov fp=zz]",
        ] {
            for owner in [None, Some("team-a"), Some("x.y_Z-9")] {
                let marked = mark(text, &f, owner);
                let parsed = parse(&marked);
                assert_eq!(parsed.text, text, "{marked}");
                assert_eq!(parsed.fingerprint.as_ref(), Some(&f));
                assert_eq!(parsed.owner, owner, "{marked}");
                assert!(parsed.is_managed_by(owner));
            }
        }
    }

    #[test]
    fn trailing_white_space_keeps_the_marker() {
        let f = fp("AccountKey=abc");
        let marked = format!("{} \n", mark("text", &f, None));
        assert_eq!(
            parse(&marked),
            Marked {
                text: "text",
                fingerprint: Some(f),
                owner: None,
            }
        );
    }

    #[test]
    fn unmarked_descriptions_are_left_whole() {
        for d in [
            "",
            "plain",
            "x [atsprov fp=123]",
            "x [atsprov fp=0123456789ABCDEF]",
            "x [atsprov fp=0123456789abcdef owner=]",
            "x [atsprov fp=0123456789abcdef owner=a b]",
            "x [atsprov fp=0123456789abcdef owner=a]b]",
            "x [atsprov fp=0123456789abcdef team=a]",
        ] {
            assert_eq!(
                parse(d),
                Marked {
                    text: d,
                    fingerprint: None,
                    owner: None,
                }
            );
        }
    }

    #[test]
    fn owners_tell_sets_apart() {
        let f = fp("AccountKey=abc");
        let plain = mark("t", &f, None);
        let team = mark("t", &f, Some("team-a"));
        assert!(parse(&plain).is_managed_by(None));
        assert!(!parse(&plain).is_managed_by(Some("team-a")));
        assert!(parse(&team).is_managed_by(Some("team-a")));
        assert!(!parse(&team).is_managed_by(Some("team-b")));
        assert!(!parse(&team).is_managed_by(None));
        assert!(!parse("hand made").is_managed_by(None));
        assert!(!is_valid_owner(&"a".repeat(OWNER_MAX_LEN + 1)));
        assert!(!is_valid_owner("a]"));
    }

    #[test]
    fn fingerprints_depend_on_key_and_salt_and_hide_the_key() {
        let a = fp("AccountKey=abc");
        assert_eq!(a, fp("AccountKey=abc"));
        assert_ne!(a, fp("AccountKey=abd"));
        assert_ne!(
            a,
            Fingerprint::of(
                "ORG@AdobeOrg",
                "dev",
                "sales",
                &Secret::new("AccountKey=abc")
            )
        );
        assert_eq!(a.as_str().len(), 16);
        assert!(!a.as_str().contains("abc"));
        // Markers on live connections carry it: the value never changes
        // (the first 8 bytes of SHA-256 over the NUL-ended parts, in hex).
        assert_eq!(a.as_str(), "1f8c5ae86fb4a6d0");
    }
}
