//! Value-walking helpers: the kind of a value, strings, lists of strings and URLs.

use figment::value::{Num, Value};

use super::Checker;
use crate::manifest::source;
use crate::url_policy::{self, UrlRefusal};

/// What kind of value a manifest holds at some key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueKind {
    /// A string (or a single character).
    String,
    /// A TOML date, time or date-time: carried as a string by figment, never a string to us.
    DateTime,
    /// `true` or `false`.
    Boolean,
    /// An integer.
    Integer,
    /// A floating-point number.
    Float,
    /// A table or inline table.
    Table,
    /// An array.
    Array,
    /// No value.
    Nothing,
}

impl ValueKind {
    /// The kind of a figment value, as far as the value alone tells (see [`Checker::kind_of`]).
    pub(super) fn of(value: &Value) -> Self {
        match value {
            Value::String(..) | Value::Char(..) => Self::String,
            Value::Bool(..) => Self::Boolean,
            Value::Num(_, Num::F32(_) | Num::F64(_)) => Self::Float,
            Value::Num(..) => Self::Integer,
            Value::Empty(..) => Self::Nothing,
            Value::Dict(..) => Self::Table,
            Value::Array(..) => Self::Array,
        }
    }

    /// An article and a noun, e.g. `an integer`.
    pub(super) fn described(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::DateTime => "a date-time",
            Self::Boolean => "a boolean",
            Self::Integer => "an integer",
            Self::Float => "a float",
            Self::Table => "a table",
            Self::Array => "an array",
            Self::Nothing => "nothing",
        }
    }
}

impl Checker<'_> {
    pub(super) fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value {
            // TOML date-times arrive as strings; they are not strings to us.
            Value::String(_, s) if self.kind_of(path, value) == ValueKind::String => Some(s),
            _ => {
                self.wrong_type(path, value, "a string");
                None
            }
        }
    }

    /// A URL that passes [`crate::url_policy`], the transport's own policy:
    /// what the loader accepts, the client sends to.
    pub(super) fn url(&mut self, path: &str, value: &Value) -> Option<url::Url> {
        let raw = self.string(path, value)?;
        let url = match url::Url::parse(raw.trim()) {
            Ok(url) => url,
            Err(err) => {
                self.error(
                    path,
                    value,
                    format!("expected a URL, found `{raw}` ({err})"),
                );
                return None;
            }
        };
        match url_policy::check_endpoint(&url) {
            Ok(()) => Some(url),
            Err(
                refusal @ (UrlRefusal::Credentials
                | UrlRefusal::PlainHttp { .. }
                | UrlRefusal::Query),
            ) => {
                self.error_hint(path, value, refusal.to_string(), refusal.hint());
                None
            }
            Err(refusal) => {
                self.error(path, value, refusal.to_string());
                None
            }
        }
    }

    pub(super) fn strings(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let Value::Array(_, items) = value else {
            self.wrong_type(path, value, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(&source::index(path, i), item) {
                Some(s) => out.push(s.to_owned()),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
