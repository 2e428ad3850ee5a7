//! Diagnostics: what is wrong with a manifest, where, and how to fix it.
//!
//! A diagnostic never carries a secret value: messages about secrets describe
//! the problem (which key, which position, which rule) and never echo input.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from, as precisely as the loader knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Nowhere in particular (e.g. a rule about the manifest as a whole).
    Unknown,
    /// A position in a file; line and column are 1-based, the column counts characters.
    File {
        /// The file, as the user named it (or joined to the manifest's directory).
        path: PathBuf,
        /// The line, when known.
        line: Option<usize>,
        /// The column, when known.
        column: Option<usize>,
    },
    /// An environment variable of the `ATSPROV_<SECTION>__<KEY>` layer.
    Env(String),
    /// A command-line flag, e.g. `--concurrency`.
    Flag(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Unknown => Ok(()),
            Location::File { path, line, column } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                    if let Some(column) = column {
                        write!(f, ":{column}")?;
                    }
                }
                Ok(())
            }
            Location::Env(var) => write!(f, "environment variable {var}"),
            Location::Flag(flag) => write!(f, "command-line flag {flag}"),
        }
    }
}

/// One problem (or warning) found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// A warning does not make the manifest invalid.
    pub is_warning: bool,
    /// Where the offending value is.
    pub location: Location,
    /// The key path, like `accounts[3].account_key`, when the problem is about one key.
    pub key: Option<String>,
    /// What was expected and what was found.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error.
    pub fn error(location: Location, key: Option<String>, message: impl Into<String>) -> Self {
        Self {
            is_warning: false,
            location,
            key,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning.
    pub fn warning(location: Location, key: Option<String>, message: impl Into<String>) -> Self {
        Self {
            is_warning: true,
            ..Self::error(location, key, message)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Orders diagnostics: by position in the file, then whole-file ones, then the rest.
    pub(crate) fn sort_key(&self) -> (usize, usize) {
        match &self.location {
            Location::File {
                line: Some(line),
                column,
                ..
            } => (*line, column.unwrap_or(0)),
            Location::File { line: None, .. } => (usize::MAX - 1, 0),
            _ => (usize::MAX, usize::MAX),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = if self.is_warning { "warning" } else { "error" };
        write!(f, "{severity}: ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if self.location != Location::Unknown {
            write!(f, "\n  --> {}", self.location)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one manifest, errors and warnings, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// The diagnostics.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| !d.is_warning).count()
    }

    /// The number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_warning).count()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{item}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The closest candidate to `input`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    candidates
        .iter()
        // Optimal string alignment: an adjacent transposition is one edit, so `nmae` is one from `name`.
        .map(|&c| (strsim::osa_distance(&input_lower, &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= (c.chars().count().max(3) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_or_absent() {
        let keys = ["account_name", "account_key", "name", "adopt"];
        assert_eq!(did_you_mean("acount_name", &keys), Some("account_name"));
        assert_eq!(did_you_mean("Account_Key", &keys), Some("account_key"));
        assert_eq!(did_you_mean("nmae", &keys), Some("name"));
        assert_eq!(did_you_mean("zzzzzzzz", &keys), None);
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // After the two-byte `é`.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn display_has_key_location_and_hint() {
        let d = Diagnostic::error(
            Location::File {
                path: "m.toml".into(),
                line: Some(3),
                column: Some(1),
            },
            Some("accounts[0].acount_name".into()),
            "unknown key",
        )
        .with_hint("did you mean `account_name`?");
        assert_eq!(
            d.to_string(),
            "error: `accounts[0].acount_name`: unknown key\n  --> m.toml:3:1\n  = hint: did you mean `account_name`?"
        );
    }
}
