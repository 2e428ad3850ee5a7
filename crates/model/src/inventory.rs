//! `atsprov list`: every live ATS connection in the manifest's sandboxes,
//! who manages it, whether its credentials match the manifest, its state,
//! and duplicate names flagged. A pure function of (desired, live), like the
//! plan, with text and `atsprov.list/v1` JSON renderers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::desired::DesiredConnection;
use crate::escape::terminal;
use crate::ownership;
use crate::plan::rank;
use crate::wire::{ATS_CONNECTION_SPEC_ID, Connection};

/// The schema tag of the JSON listing.
pub const LIST_SCHEMA: &str = "atsprov.list/v1";

/// Who manages a live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "owner")]
pub enum ManagedBy {
    /// atsprov, for this manifest (its marker names this manifest's owner, or
    /// neither has one).
    ThisManifest,
    /// atsprov, for another manifest: the owner its marker names (`None`:
    /// a marker without an owner, seen from a manifest with one).
    OtherOwner(Option<String>),
    /// Nobody: made by hand, in the AEP UI or by another tool.
    Nobody,
}

/// Whether a live connection's credentials match the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// Managed by this manifest, declared, and the fingerprint matches.
    Match,
    /// Managed by this manifest, declared, but the fingerprint differs (a
    /// rotated key not yet applied).
    Differ,
    /// The manifest does not declare this (sandbox, name).
    NotDeclared,
    /// Declared, but not managed by this manifest: no fingerprint to compare.
    Unknown,
}

impl Credentials {
    fn as_str(self) -> &'static str {
        match self {
            Credentials::Match => "match",
            Credentials::Differ => "differ",
            Credentials::NotDeclared => "not declared",
            Credentials::Unknown => "unknown",
        }
    }
}

/// One live connection as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The sandbox.
    pub sandbox: String,
    /// The connection's name.
    pub name: String,
    /// The connection id.
    pub id: String,
    /// The state the API reports (`enabled`, `disabled`, `delete-finalizing`, …).
    pub state: Option<String>,
    /// Who manages it.
    pub managed_by: ManagedBy,
    /// Whether its credentials match the manifest.
    pub credentials: Credentials,
    /// True when another live connection in the sandbox has the same name.
    pub duplicate: bool,
    /// Creation time, epoch milliseconds.
    pub created_at: Option<i64>,
}

/// Every live ATS connection, in the manifest's sandbox order, then by name,
/// creation time and id. `owner` is the manifest's `owner`.
pub fn list(
    desired: &[DesiredConnection],
    live: &BTreeMap<String, Vec<Connection>>,
    owner: Option<&str>,
    sandboxes: &[String],
) -> Vec<Listed> {
    let wanted: HashMap<(&str, &str), &DesiredConnection> = desired
        .iter()
        .map(|d| ((&*d.sandbox, &*d.name), d))
        .collect();
    let mut out = Vec::new();
    for (sandbox, connections) in live {
        let ats: Vec<&Connection> = connections
            .iter()
            .filter(|c| c.connection_spec.id == ATS_CONNECTION_SPEC_ID)
            .collect();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for c in &ats {
            *count.entry(c.name.as_str()).or_default() += 1;
        }
        for c in ats {
            let marked = ownership::parse(c.description.as_deref().unwrap_or(""));
            let managed_by = match (&marked.fingerprint, marked.owner) {
                (None, _) => ManagedBy::Nobody,
                (Some(_), o) if o == owner => ManagedBy::ThisManifest,
                (Some(_), o) => ManagedBy::OtherOwner(o.map(str::to_owned)),
            };
            let credentials = match wanted.get(&(sandbox.as_str(), c.name.as_str())) {
                None => Credentials::NotDeclared,
                Some(_) if managed_by != ManagedBy::ThisManifest => Credentials::Unknown,
                Some(want) if marked.fingerprint.as_ref() == Some(&want.fingerprint) => {
                    Credentials::Match
                }
                Some(_) => Credentials::Differ,
            };
            out.push(Listed {
                sandbox: sandbox.clone(),
                name: c.name.clone(),
                id: c.id.clone(),
                state: c.state.as_deref().map(str::to_owned),
                managed_by,
                credentials,
                duplicate: count.get(c.name.as_str()).copied().unwrap_or(0) > 1,
                created_at: c.created_at,
            });
        }
    }
    // Duplicates oldest first (the one a dedupe keeps), then by id.
    out.sort_by(|a, b| {
        (
            rank(sandboxes, &a.sandbox),
            &a.sandbox,
            &a.name,
            a.created_at,
            &a.id,
        )
            .cmp(&(
                rank(sandboxes, &b.sandbox),
                &b.sandbox,
                &b.name,
                b.created_at,
                &b.id,
            ))
    });
    out
}

impl ManagedBy {
    /// The words a person reads.
    pub fn describe(&self) -> String {
        match self {
            ManagedBy::ThisManifest => "this manifest".to_owned(),
            ManagedBy::OtherOwner(Some(owner)) => format!("owner {owner}"),
            ManagedBy::OtherOwner(None) => "atsprov (no owner)".to_owned(),
            ManagedBy::Nobody => "nobody".to_owned(),
        }
    }
}

#[derive(Serialize)]
struct ListJson<'a> {
    schema: &'static str,
    connections: &'a [Listed],
}

/// The listing as `atsprov.list/v1` JSON (pretty, newline at the end).
pub fn list_json(listed: &[Listed]) -> String {
    let doc = ListJson {
        schema: LIST_SCHEMA,
        connections: listed,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The listing for a terminal: a table per sandbox, then a count.
pub fn list_text(listed: &[Listed]) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|l| {
            [
                terminal(&l.name).into_owned(),
                terminal(&l.id).into_owned(),
                terminal(l.state.as_deref().unwrap_or("-")).into_owned(),
                terminal(&l.managed_by.describe()).into_owned(),
                l.credentials.as_str().to_owned(),
                if l.duplicate {
                    "DUPLICATE".to_owned()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let header = ["NAME", "ID", "STATE", "MANAGED BY", "CREDENTIALS", ""];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut text = String::from(" ");
        for (cell, w) in cells.iter().zip(width) {
            let _ = write!(text, " {cell:<w$}");
        }
        text.trim_end().to_owned()
    };
    let mut sandbox: Option<&str> = None;
    for (l, row) in listed.iter().zip(&rows) {
        if sandbox != Some(l.sandbox.as_str()) {
            if sandbox.is_some() {
                out.push('\n');
            }
            sandbox = Some(&l.sandbox);
            let _ = writeln!(out, "Sandbox {}", terminal(&l.sandbox));
            let _ = writeln!(out, "{}", line(header));
        }
        let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
    }
    if !listed.is_empty() {
        out.push('\n');
    }
    let duplicates = listed.iter().filter(|l| l.duplicate).count();
    let ours = listed
        .iter()
        .filter(|l| l.managed_by == ManagedBy::ThisManifest)
        .count();
    let _ = writeln!(
        out,
        "{} connection{}: {ours} managed by this manifest, {duplicates} with a duplicate name",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::wire::SpecRef;

    const ORG: &str = "ORG@AdobeOrg";

    fn live(id: &str, name: &str, description: Option<&str>) -> Connection {
        Connection {
            id: id.to_owned(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            connection_spec: SpecRef {
                id: ATS_CONNECTION_SPEC_ID.into(),
                version: None,
            },
            state: Some("enabled".into()),
            etag: String::new(),
            created_at: None,
            plain: Default::default(),
        }
    }

    fn want(name: &str, key: &str, owner: Option<&str>) -> DesiredConnection {
        DesiredConnection::new(ORG, "prod", name, "d", Secret::new(key), false, 0)
            .owned_by(owner.map(Into::into))
    }

    #[test]
    fn says_who_manages_what_and_whether_it_matches() {
        let ok = want("ok", "k1", Some("a"));
        let rotated_old = want("rotated", "old", Some("a"));
        let rotated = want("rotated", "new", Some("a"));
        let theirs = want("theirs", "k", Some("b"));
        let legacy = want("legacy", "k", None);
        let mut spec = live("9", "other-spec", None);
        spec.connection_spec.id = "another".into();
        let connections = vec![
            live("1", "ok", Some(&ok.marked_description())),
            live("2", "rotated", Some(&rotated_old.marked_description())),
            live("3", "theirs", Some(&theirs.marked_description())),
            live("4", "legacy", Some(&legacy.marked_description())),
            live("5", "by-hand", None),
            live("6", "by-hand", Some("again")),
            spec,
        ];
        let map = BTreeMap::from([("prod".to_owned(), connections)]);
        let desired = [ok, rotated, want("by-hand", "k", Some("a"))];
        let listed = list(&desired, &map, Some("a"), &[]);
        let row = |id: &str| listed.iter().find(|l| l.id == id).unwrap();
        assert_eq!(listed.len(), 6, "other specs are not listed");
        assert_eq!(
            (row("1").managed_by.clone(), row("1").credentials),
            (ManagedBy::ThisManifest, Credentials::Match)
        );
        assert_eq!(row("2").credentials, Credentials::Differ);
        assert_eq!(
            row("3").managed_by,
            ManagedBy::OtherOwner(Some("b".to_owned()))
        );
        assert_eq!(row("3").credentials, Credentials::NotDeclared);
        assert_eq!(row("4").managed_by, ManagedBy::OtherOwner(None));
        assert_eq!(
            (row("5").managed_by.clone(), row("5").credentials),
            (ManagedBy::Nobody, Credentials::Unknown)
        );
        assert!(row("5").duplicate && row("6").duplicate && !row("1").duplicate);

        let text = list_text(&listed);
        assert!(text.contains("DUPLICATE"), "{text}");
        assert!(
            text.ends_with("6 connections: 2 managed by this manifest, 2 with a duplicate name\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&list_json(&listed)).unwrap();
        assert_eq!(json["schema"], LIST_SCHEMA);
        assert_eq!(json["connections"][0]["managed_by"]["kind"], "nobody");
    }

    #[test]
    fn hostile_names_do_not_reach_the_terminal_raw() {
        let map = BTreeMap::from([(
            "prod".to_owned(),
            vec![live("1", "x\u{1b}]0;pwned\u{7}", None)],
        )]);
        let text = list_text(&list(&[], &map, None, &[]));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
    }
}
