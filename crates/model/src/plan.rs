//! The plan: a pure function of (desired, live) that says, per connection,
//! what `apply` would do. See `docs/formats.md` and `docs/operations.md`.

use std::collections::{BTreeMap, HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;

use crate::desired::DesiredConnection;
use crate::ownership;
use crate::wire::Connection;

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Declared, absent: create it.
    Create,
    /// Declared, present and managed (or adopted), but different: patch it.
    Update,
    /// Declared, present, managed and identical: nothing to do.
    NoOp,
    /// Managed, no longer declared, and `--prune` given: delete it.
    Delete,
    /// Present but not ours, or present more than once: left alone.
    Conflict,
    /// Managed, no longer declared, no `--prune`: left alone.
    Orphan,
}

impl Action {
    /// The name used in JSON and reports (`no-op`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::NoOp => "no-op",
            Action::Delete => "delete",
            Action::Conflict => "conflict",
            Action::Orphan => "orphan",
        }
    }

    /// True for the actions that write: create, update, delete.
    pub fn is_change(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// A field an update changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    /// The user's description text (or the ownership marker on adoption).
    Description,
    /// The connection string (detected through the fingerprint).
    Credentials,
}

impl Field {
    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::Credentials => "credentials",
        }
    }
}

/// One row of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The sandbox.
    pub sandbox: String,
    /// The connection's name.
    pub name: String,
    /// What happens.
    pub action: Action,
    /// The live connection's id, when there is exactly one.
    pub connection_id: Option<String>,
    /// The live connection's etag, for the `If-Match` of an update.
    pub etag: Option<String>,
    /// For an update: the fields that change.
    pub fields: Vec<Field>,
    /// Why, in words a person can act on.
    pub reason: String,
    /// Index into the desired connections, for declared items.
    pub desired: Option<usize>,
}

/// How many changes of each action a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    /// Connections to create.
    pub create: usize,
    /// Connections to update.
    pub update: usize,
    /// Connections left as they are.
    #[serde(rename = "no-op")]
    pub no_op: usize,
    /// Connections to delete.
    pub delete: usize,
    /// Conflicts, left alone.
    pub conflict: usize,
    /// Orphans, left alone.
    pub orphan: usize,
}

impl Summary {
    /// True when applying would write anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }
}

/// A sandbox whose live state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SandboxError {
    /// The sandbox.
    pub sandbox: String,
    /// What went wrong, one line.
    pub error: String,
}

/// The whole plan, changes sorted by sandbox then name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every row, declared items and orphans alike.
    pub changes: Vec<Change>,
    /// Sandboxes that could not be read; their declared items are not in `changes`.
    pub errors: Vec<SandboxError>,
}

impl Plan {
    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::NoOp => s.no_op += 1,
                Action::Delete => s.delete += 1,
                Action::Conflict => s.conflict += 1,
                Action::Orphan => s.orphan += 1,
            }
        }
        s
    }
}

/// Computes the plan.
///
/// `live` holds, per sandbox, every ATS connection listed there; sandboxes
/// missing from it (their listing failed) are skipped and named in
/// `sandbox_errors`. With `prune`, managed connections that are no longer
/// declared become deletes; without it, orphans.
pub fn plan(
    desired: &[DesiredConnection],
    live: &BTreeMap<String, Vec<Connection>>,
    sandbox_errors: Vec<SandboxError>,
    prune: bool,
) -> Plan {
    let mut changes = Vec::with_capacity(desired.len());
    let mut declared: HashSet<(&str, &str)> = HashSet::with_capacity(desired.len());
    let by_name: BTreeMap<&str, HashMap<&str, Vec<&Connection>>> = live
        .iter()
        .map(|(sandbox, connections)| {
            let mut names: HashMap<&str, Vec<&Connection>> = HashMap::new();
            for c in connections {
                names.entry(c.name.as_str()).or_default().push(c);
            }
            (sandbox.as_str(), names)
        })
        .collect();

    for (index, want) in desired.iter().enumerate() {
        let Some(names) = by_name.get(want.sandbox.as_str()) else {
            continue;
        };
        declared.insert((want.sandbox.as_str(), want.name.as_str()));
        let found = names
            .get(want.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        changes.push(diff_one(index, want, found));
    }

    for (sandbox, names) in &by_name {
        for (name, found) in names {
            if declared.contains(&(*sandbox, *name)) {
                continue;
            }
            for c in found {
                let managed = c
                    .description
                    .as_deref()
                    .is_some_and(|d| ownership::parse(d).fingerprint.is_some());
                if !managed {
                    continue;
                }
                let (action, reason) = if prune {
                    (Action::Delete, "managed by atsprov and no longer declared")
                } else {
                    (
                        Action::Orphan,
                        "managed by atsprov and no longer declared; `--prune` deletes it",
                    )
                };
                changes.push(Change {
                    sandbox: (*sandbox).to_owned(),
                    name: (*name).to_owned(),
                    action,
                    connection_id: Some(c.id.clone()),
                    etag: Some(c.etag.clone()),
                    fields: Vec::new(),
                    reason: reason.to_owned(),
                    desired: None,
                });
            }
        }
    }

    changes.sort_by(|a, b| {
        place(&a.sandbox, &a.name, &a.connection_id).cmp(&place(
            &b.sandbox,
            &b.name,
            &b.connection_id,
        ))
    });
    let mut errors = sandbox_errors;
    errors.sort_by(|a, b| a.sandbox.cmp(&b.sandbox));
    Plan { changes, errors }
}

/// The order of plans and reports: sandbox, then name, then id.
pub(crate) fn place<'a>(
    sandbox: &'a str,
    name: &'a str,
    id: &'a Option<String>,
) -> (&'a str, &'a str, Option<&'a str>) {
    (sandbox, name, id.as_deref())
}

/// Diffs one declared connection against the live connections of that name.
pub fn diff_one(index: usize, want: &DesiredConnection, found: &[&Connection]) -> Change {
    let mut change = Change {
        sandbox: want.sandbox.clone(),
        name: want.name.clone(),
        action: Action::Create,
        connection_id: None,
        etag: None,
        fields: Vec::new(),
        reason: "not present in the sandbox".to_owned(),
        desired: Some(index),
    };
    let live = match found {
        [] => return change,
        [one] => *one,
        many => {
            let mut ids: Vec<&str> = many.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            change.action = Action::Conflict;
            change.reason = format!(
                "{} connections named `{}` exist ({}); delete the extras in AEP so one remains",
                many.len(),
                want.name,
                ids.join(", ")
            );
            return change;
        }
    };
    change.connection_id = Some(live.id.clone());
    change.etag = Some(live.etag.clone());
    let description = live.description.as_deref().unwrap_or("");
    let marked = ownership::parse(description);
    match marked.fingerprint {
        None if want.adopt => {
            change.action = Action::Update;
            change.fields = vec![Field::Description, Field::Credentials];
            change.reason =
                "adopt: take over the existing connection not managed by atsprov".to_owned();
        }
        None => {
            change.action = Action::Conflict;
            change.reason = format!(
                "a connection named `{}` exists but is not managed by atsprov; set `adopt = true` on the account to take it over, or rename it",
                want.name
            );
        }
        Some(fingerprint) => {
            if marked.text != want.description {
                change.fields.push(Field::Description);
            }
            if fingerprint != want.fingerprint {
                change.fields.push(Field::Credentials);
            }
            if change.fields.is_empty() {
                change.action = Action::NoOp;
                change.reason = "up to date".to_owned();
            } else {
                change.action = Action::Update;
                let words: Vec<&str> = change
                    .fields
                    .iter()
                    .map(|f| match f {
                        Field::Description => "description changed",
                        Field::Credentials => "credentials changed",
                    })
                    .collect();
                change.reason = words.join(", ");
            }
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::wire::SpecRef;

    const ORG: &str = "ORG@AdobeOrg";

    fn want(
        sandbox: &str,
        name: &str,
        description: &str,
        key: &str,
        adopt: bool,
    ) -> DesiredConnection {
        DesiredConnection::new(ORG, sandbox, name, description, Secret::new(key), adopt, 0)
    }

    fn live(id: &str, name: &str, description: &str) -> Connection {
        Connection {
            id: id.to_owned(),
            name: name.to_owned(),
            description: Some(description.to_owned()),
            connection_spec: SpecRef {
                id: crate::wire::ATS_CONNECTION_SPEC_ID.to_owned(),
                version: Some("1.0".to_owned()),
            },
            state: Some("enabled".to_owned()),
            etag: format!("\"etag-{id}\""),
            created_at: None,
            updated_at: None,
            created_client: None,
            updated_client: None,
            sandbox_name: None,
        }
    }

    fn managed(id: &str, d: &DesiredConnection) -> Connection {
        live(id, &d.name, &d.marked_description())
    }

    fn row(p: &Plan, name: &str) -> (Action, Vec<Field>) {
        let c = p
            .changes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        (c.action, c.fields.clone())
    }

    #[test]
    fn every_row_of_the_table() {
        let same = want("prod", "same", "d", "k1", false);
        let rotated = want("prod", "rotated", "d", "k2", false);
        let redescribed = want("prod", "redescribed", "new text", "k3", false);
        let absent = want("prod", "absent", "d", "k4", false);
        let foreign = want("prod", "foreign", "d", "k5", false);
        let adopted = want("prod", "adopted", "d", "k6", true);
        let twice = want("prod", "twice", "d", "k7", false);
        let desired = vec![
            same.clone(),
            rotated.clone(),
            redescribed.clone(),
            absent,
            foreign,
            adopted,
            twice.clone(),
        ];

        let old_rotated = want("prod", "rotated", "d", "old-key", false);
        let old_described = want("prod", "redescribed", "old text", "k3", false);
        let gone = want("prod", "gone", "d", "k8", false);
        let live_prod = vec![
            managed("1", &same),
            managed("2", &old_rotated),
            managed("3", &old_described),
            live("4", "foreign", "made by hand"),
            live("5", "adopted", "made by hand"),
            managed("6", &twice),
            managed("7", &twice),
            managed("8", &gone),
            live("9", "unrelated", "not ours, not declared"),
        ];
        let live_map = BTreeMap::from([("prod".to_owned(), live_prod)]);

        let p = plan(&desired, &live_map, Vec::new(), false);
        assert_eq!(row(&p, "same"), (Action::NoOp, vec![]));
        assert_eq!(
            row(&p, "rotated"),
            (Action::Update, vec![Field::Credentials])
        );
        assert_eq!(
            row(&p, "redescribed"),
            (Action::Update, vec![Field::Description])
        );
        assert_eq!(row(&p, "absent"), (Action::Create, vec![]));
        assert_eq!(row(&p, "foreign").0, Action::Conflict);
        assert_eq!(
            row(&p, "adopted"),
            (Action::Update, vec![Field::Description, Field::Credentials])
        );
        assert_eq!(row(&p, "twice").0, Action::Conflict);
        assert_eq!(row(&p, "gone").0, Action::Orphan);
        assert!(p.changes.iter().all(|c| c.name != "unrelated"));
        assert_eq!(
            p.summary(),
            Summary {
                create: 1,
                update: 3,
                no_op: 1,
                delete: 0,
                conflict: 2,
                orphan: 1
            }
        );

        let pruned = plan(&desired, &live_map, Vec::new(), true);
        assert_eq!(row(&pruned, "gone").0, Action::Delete);
        assert_eq!(pruned.summary().delete, 1);
    }

    #[test]
    fn sandboxes_that_could_not_be_read_are_left_out() {
        let desired = vec![
            want("dev", "a", "d", "k", false),
            want("prod", "a", "d", "k", false),
        ];
        let live_map = BTreeMap::from([("prod".to_owned(), Vec::new())]);
        let errors = vec![SandboxError {
            sandbox: "dev".into(),
            error: "HTTP 403".into(),
        }];
        let p = plan(&desired, &live_map, errors, false);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].sandbox, "prod");
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn sandboxes_are_isolated() {
        let d = want("dev", "a", "d", "k", false);
        let desired = vec![d.clone()];
        // The same name managed in prod is not a match for dev, and prod is not planned.
        let live_map = BTreeMap::from([("dev".to_owned(), Vec::new())]);
        let p = plan(&desired, &live_map, Vec::new(), false);
        assert_eq!(row(&p, "a").0, Action::Create);
    }
}
