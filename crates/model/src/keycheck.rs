//! The result of `verify` (each account's key checked against its own Table
//! endpoint) and its renderers: text for a person, `atsprov.verify/v1` JSON
//! and Markdown. Pure string functions, like the plan's.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use crate::escape::{md_cell, md_code, terminal};
use crate::report::ItemError;

/// The schema tag of the JSON result.
pub const VERIFY_SCHEMA: &str = "atsprov.verify/v1";

/// The key check of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KeyCheck {
    /// Index in the manifest's `[[accounts]]`.
    #[serde(skip)]
    pub index: usize,
    /// The account entry's `name`.
    pub name: String,
    /// The storage account.
    pub account: String,
    /// The Table endpoint checked; empty when none could be made.
    pub endpoint: String,
    /// `None` when the key works; else why not (kind `key_check`).
    pub error: Option<ItemError>,
}

/// Counts of a key check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VerifySummary {
    /// Accounts whose key works.
    pub ok: usize,
    /// Accounts whose key could not be confirmed.
    pub failed: usize,
}

/// `verify --format json`: `atsprov.verify/v1`, one entry per account in
/// the manifest's order.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(title = "atsprov verify result")]
pub struct VerifyJson<'a> {
    /// Always `atsprov.verify/v1`.
    pub schema: &'static str,
    /// Counts.
    pub summary: VerifySummary,
    /// One per account checked.
    pub accounts: &'a [KeyCheck],
}

fn summary(checks: &[KeyCheck]) -> VerifySummary {
    let failed = checks.iter().filter(|c| c.error.is_some()).count();
    VerifySummary {
        ok: checks.len() - failed,
        failed,
    }
}

/// The checks as JSON (`atsprov.verify/v1`), with a newline at the end.
pub fn verify_json(checks: &[KeyCheck]) -> String {
    let json = VerifyJson {
        schema: VERIFY_SCHEMA,
        summary: summary(checks),
        accounts: checks,
    };
    let mut text = serde_json::to_string_pretty(&json).expect("the key check serializes to JSON");
    text.push('\n');
    text
}

/// The checks as a person reads them: a line per account (a `hint:` line
/// under a failure that has one), then the counts.
pub fn verify_text(checks: &[KeyCheck]) -> String {
    let width = checks
        .iter()
        .map(|c| terminal(&c.name).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let (word, detail) = match &c.error {
            None => ("ok    ", format!("{} at {}", c.account, c.endpoint)),
            Some(e) if c.endpoint.is_empty() => ("FAILED", e.to_string()),
            Some(e) => ("FAILED", format!("{} at {}: {e}", c.account, c.endpoint)),
        };
        let _ = writeln!(
            out,
            "  {word}  {:<width$}  {}",
            terminal(&c.name),
            terminal(&detail)
        );
        if let Some(hint) = c.error.as_ref().and_then(|e| e.hint.as_deref()) {
            let _ = writeln!(out, "          hint: {}", terminal(hint));
        }
    }
    let s = summary(checks);
    let _ = writeln!(out, "Key check: {} ok, {} failed", s.ok, s.failed);
    out
}

/// The checks as Markdown, a table fit for a CI job summary.
pub fn verify_markdown(checks: &[KeyCheck]) -> String {
    let s = summary(checks);
    let mut out = String::from("## atsprov verify\n\n");
    let _ = writeln!(out, "{} ok, {} failed\n", s.ok, s.failed);
    if checks.is_empty() {
        return out;
    }
    out.push_str("| account | storage account | endpoint | result |\n|---|---|---|---|\n");
    for c in checks {
        let result = match &c.error {
            None => "ok".to_owned(),
            Some(e) => {
                let mut text = format!("**failed**: {e}");
                if let Some(hint) = &e.hint {
                    let _ = write!(text, " (hint: {hint})");
                }
                md_cell(&text)
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {result} |",
            md_code(&c.name),
            md_code(&c.account),
            md_cell(&c.endpoint)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ErrorKind;

    fn checks() -> Vec<KeyCheck> {
        vec![
            KeyCheck {
                index: 0,
                name: "sales".into(),
                account: "saleseu".into(),
                endpoint: "https://saleseu.table.core.windows.net".into(),
                error: None,
            },
            KeyCheck {
                index: 1,
                name: "bad|\u{1b}[31m".into(),
                account: "bad".into(),
                endpoint: "https://bad.table.core.windows.net".into(),
                error: Some(
                    ItemError::new(ErrorKind::KeyCheck, "the account key was refused")
                        .with_hint(Some("copy a current key".into())),
                ),
            },
        ]
    }

    #[test]
    fn every_format_names_each_account_and_the_counts() {
        let checks = checks();
        let json: serde_json::Value = serde_json::from_str(&verify_json(&checks)).unwrap();
        assert_eq!(json["schema"], VERIFY_SCHEMA);
        assert_eq!(json["summary"]["ok"], 1);
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["accounts"][0]["error"], serde_json::Value::Null);
        assert_eq!(json["accounts"][1]["error"]["kind"], "key_check");
        assert_eq!(json["accounts"][1]["error"]["hint"], "copy a current key");
        assert!(json["accounts"][0].get("index").is_none());

        let text = verify_text(&checks);
        assert!(text.contains("hint: copy a current key"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "escaped for the terminal: {text:?}"
        );
        assert!(text.ends_with("Key check: 1 ok, 1 failed\n"), "{text}");

        let md = verify_markdown(&checks);
        assert!(md.contains("1 ok, 1 failed"), "{md}");
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| `")).count(),
            2,
            "{md}"
        );
        assert!(!md.contains("bad|"), "a pipe never splits a cell: {md}");
    }
}
