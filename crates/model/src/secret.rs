//! Secrets: a value type that never shows itself, and the manifest's references to secrets.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serializer};

/// A secret value: an account key, connection string, client secret or access token.
///
/// `Debug` and `Display` print `***`; the value is reachable only through
/// [`Secret::expose`], which call sites use at the last moment (building an
/// HTTP header or body, hashing a fingerprint). It deliberately does not
/// implement `Serialize`: a struct that must send a secret on the wire says
/// so with `#[serde(serialize_with = "secret::expose_for_wire")]`.
///
/// Clones share one value (an account's connection string goes to each of
/// its sandboxes); it is zeroed when the last clone is dropped.
#[derive(Clone)]
pub struct Secret(Arc<SecretString>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(SecretString::from(value.into())))
    }

    /// The value itself. Never log or print what this returns.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when the value is empty or only white space.
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Where the manifest says a secret is: `{ env = "VAR" }`, `{ file = "path" }` or a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable, by name.
    Env(String),
    /// A file, relative to the manifest's directory; its content is trimmed.
    File(std::path::PathBuf),
    /// The value itself, written in the manifest (discouraged: accepted with a warning).
    Literal(Secret),
}

/// Serializes a secret's value; only for request bodies sent to the API.
pub fn expose_for_wire<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
