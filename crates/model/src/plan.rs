//! The plan: a pure function of (desired, live) that says, per connection,
//! what `apply` would do. See `docs/formats.md` and `docs/operations.md`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::desired::DesiredConnection;
use crate::ownership::{self, Fingerprint};
use crate::wire::{ATS_CONNECTION_SPEC_ID, Connection};

mod basis;
mod diff;

pub use basis::Basis;
pub use diff::{Diff, DiffField};
use diff::{credential_diff, describe};

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
    // Shared with the desired connection (a plan may hold 100,000 rows).
    /// The sandbox.
    pub sandbox: Arc<str>,
    /// The connection's name.
    pub name: Arc<str>,
    /// What happens.
    pub action: Action,
    /// The live connection's id, when there is exactly one.
    pub connection_id: Option<String>,
    /// The live connection's etag, for the `If-Match` of an update.
    pub etag: Option<String>,
    /// For an update: the fields that change.
    pub fields: Vec<Field>,
    /// For an update: each change from the live value to the declared one.
    pub diff: Vec<Diff>,
    /// Why, in words a person can act on (most are fixed texts, not
    /// allocated per row: a plan may hold 100,000 rows).
    pub reason: Cow<'static, str>,
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

    /// True when nothing needs doing or looking at: no writes, no conflicts,
    /// no orphans. Only then may a plan say "no changes".
    pub fn is_clean(&self) -> bool {
        !self.has_changes() && self.conflict == 0 && self.orphan == 0
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

/// The whole plan: changes in the manifest's sandbox order, then by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What the plan was made from.
    pub basis: Basis,
    /// The sandboxes planned, in the order the manifest declares them.
    pub sandboxes: Vec<String>,
    /// Whether the plan was made with `--prune`.
    pub prune: bool,
    /// The `--target` patterns it was made with (empty: every account).
    pub targets: Vec<String>,
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

    /// The position of a sandbox in the manifest's order (unknown ones last).
    pub fn rank(&self, sandbox: &str) -> usize {
        rank(&self.sandboxes, sandbox)
    }
}

/// The position of `sandbox` in `order`; sandboxes not in it come last.
pub fn rank(order: &[String], sandbox: &str) -> usize {
    order
        .iter()
        .position(|s| s == sandbox)
        .unwrap_or(order.len())
}

/// What a plan is asked for besides (desired, live).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `--prune`: managed connections no longer declared become deletes.
    pub prune: bool,
    /// The manifest's `owner`: only connections whose marker names it are managed.
    pub owner: Option<&'a str>,
    /// The sandboxes in the order the manifest declares them.
    pub sandboxes: &'a [String],
    /// `--target` patterns: live connections of other names are left out (empty: all).
    pub targets: &'a [String],
}

/// Computes the plan.
///
/// `live` holds, per sandbox, every ATS connection listed there; sandboxes
/// missing from it (their listing failed) are skipped and named in
/// `sandbox_errors`. Connections of another spec, or in state
/// `delete-finalizing`, or whose marker names another owner, are not this
/// manifest's business. With `prune`, managed connections that are no
/// longer declared become deletes; without it, orphans. Duplicates atsprov
/// made itself (same name, owner and fingerprint) are deleted but the oldest.
pub fn plan(
    desired: &[DesiredConnection],
    live: &BTreeMap<String, Vec<Connection>>,
    sandbox_errors: Vec<SandboxError>,
    options: Options<'_>,
) -> Plan {
    let mut planner = Planner::new(desired, options);
    for (sandbox, connections) in live {
        planner.sandbox(sandbox, connections);
    }
    planner.finish(sandbox_errors)
}

/// [`plan`], fed one sandbox at a time, so that only one sandbox's live
/// connections need be held (100,000 of them are about 50 MB). Sandboxes
/// must come in ascending order of name (as from a `BTreeMap`), each once;
/// the result is the same as [`plan`] over all of them.
pub struct Planner<'a> {
    desired: &'a [DesiredConnection],
    options: Options<'a>,
    /// Indices into `desired`, by sandbox.
    by_sandbox: HashMap<&'a str, Vec<usize>>,
    changes: Vec<Change>,
    live: basis::LiveDigest,
}

impl<'a> Planner<'a> {
    /// A plan of `desired` with `options`, no sandbox read yet.
    pub fn new(desired: &'a [DesiredConnection], options: Options<'a>) -> Self {
        let mut by_sandbox: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, want) in desired.iter().enumerate() {
            by_sandbox.entry(&*want.sandbox).or_default().push(index);
        }
        Self {
            desired,
            options,
            by_sandbox,
            changes: Vec::with_capacity(desired.len()),
            live: basis::LiveDigest::new(),
        }
    }

    /// Plans `sandbox` from its live connections (every ATS connection listed there).
    pub fn sandbox(&mut self, sandbox: &str, connections: &[Connection]) {
        let options = self.options;
        self.live.sandbox(sandbox, connections);
        let mut names: HashMap<&str, Vec<&Connection>> = HashMap::new();
        // Other owners' connections, by name: never touched, but a declared
        // name one of them already has is said in that create's reason.
        let mut others: HashMap<&str, Vec<&Connection>> = HashMap::new();
        for c in connections
            .iter()
            .filter(|c| crate::target::in_scope(options.targets, &c.name))
        {
            match business(c, options.owner) {
                Business::Ours => names.entry(&*c.name).or_default().push(c),
                Business::OtherOwner => others.entry(&*c.name).or_default().push(c),
                Business::None => {}
            }
        }
        let mut declared: HashSet<&str> = HashSet::new();
        for &index in self
            .by_sandbox
            .get(sandbox)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let want = &self.desired[index];
            declared.insert(&*want.name);
            let found = names.get(&*want.name).map(Vec::as_slice).unwrap_or(&[]);
            let (keep, extras) = dedupe(found, options.owner);
            for extra in extras {
                self.changes
                    .push(dedupe_row(sandbox, &want.name, extra, keep[0]));
            }
            let mut change = diff_one(index, want, &keep);
            if change.action == Action::Create
                && found.is_empty()
                && let Some(theirs) = others.get(&*want.name)
            {
                change.reason = other_owners_reason(want, theirs).into();
            }
            self.changes.push(change);
        }
        for (name, found) in &names {
            if declared.contains(name) {
                continue;
            }
            for c in found {
                if !is_managed(c, options.owner) {
                    continue;
                }
                let (action, reason) = if options.prune {
                    (Action::Delete, "managed by atsprov and no longer declared")
                } else {
                    (
                        Action::Orphan,
                        "managed by atsprov and no longer declared; `--prune` deletes it",
                    )
                };
                self.changes.push(Change {
                    sandbox: sandbox.into(),
                    name: (*name).into(),
                    action,
                    connection_id: Some(c.id.clone()),
                    etag: Some(c.etag.clone()),
                    fields: Vec::new(),
                    diff: Vec::new(),
                    reason: reason.into(),
                    desired: None,
                });
            }
        }
    }

    /// The plan; `sandbox_errors` names the sandboxes that could not be read.
    pub fn finish(self, sandbox_errors: Vec<SandboxError>) -> Plan {
        let order = self.options.sandboxes;
        let mut changes = self.changes;
        changes.sort_by(|a, b| {
            place(order, &a.sandbox, &a.name, &a.connection_id).cmp(&place(
                order,
                &b.sandbox,
                &b.name,
                &b.connection_id,
            ))
        });
        let mut errors = sandbox_errors;
        errors.sort_by(|a, b| {
            (rank(order, &a.sandbox), &a.sandbox).cmp(&(rank(order, &b.sandbox), &b.sandbox))
        });
        Plan {
            basis: Basis::finish(self.desired, &self.options, self.live),
            sandboxes: order.to_vec(),
            prune: self.options.prune,
            targets: self.options.targets.to_vec(),
            changes,
            errors,
        }
    }
}

/// Whose business a live connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Business {
    /// Unmarked, or marked for this manifest's owner.
    Ours,
    /// Marked by atsprov for another owner: never touched.
    OtherOwner,
    /// Of another spec, or being deleted.
    None,
}

fn business(c: &Connection, owner: Option<&str>) -> Business {
    if c.connection_spec.id != ATS_CONNECTION_SPEC_ID || c.is_deleting() {
        return Business::None;
    }
    let marked = ownership::parse(c.description.as_deref().unwrap_or(""));
    if marked.fingerprint.is_none() || marked.owner == owner {
        Business::Ours
    } else {
        Business::OtherOwner
    }
}

/// The reason of a create whose name another owner's connection has: the
/// plan makes a second connection of that name, and a reviewer should know
/// (a changed `owner` is the usual cause).
fn other_owners_reason(want: &DesiredConnection, theirs: &[&Connection]) -> String {
    fn label(owner: Option<&str>) -> String {
        owner.map_or_else(|| "none".to_owned(), |o| format!("`{o}`"))
    }
    let mut owners: Vec<String> = theirs
        .iter()
        .map(|c| label(ownership::parse(c.description.as_deref().unwrap_or("")).owner))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    format!(
        "not present for this manifest's owner ({}); a connection named `{}` of another owner ({}) exists and is left alone, so this makes a second one (if `owner` was changed, set it back)",
        label(want.owner.as_deref()),
        want.name,
        owners.join(", ")
    )
}

fn is_managed(c: &Connection, owner: Option<&str>) -> bool {
    ownership::parse(c.description.as_deref().unwrap_or("")).is_managed_by(owner)
}

/// Splits same-name connections into the ones to plan with and the
/// duplicates atsprov made itself, which go. Only when every one is managed
/// by this manifest with one fingerprint is it a duplicate atsprov made (an
/// ambiguous create that went through twice); anything else is a conflict
/// for a person, and all are kept.
fn dedupe<'a>(
    found: &[&'a Connection],
    owner: Option<&str>,
) -> (Vec<&'a Connection>, Vec<&'a Connection>) {
    if found.len() < 2 {
        return (found.to_vec(), Vec::new());
    }
    let fingerprints: Vec<Option<Fingerprint>> = found
        .iter()
        .map(|c| {
            let marked = ownership::parse(c.description.as_deref().unwrap_or(""));
            marked
                .is_managed_by(owner)
                .then_some(marked.fingerprint)
                .flatten()
        })
        .collect();
    let same = fingerprints[0].is_some() && fingerprints.iter().all(|f| *f == fingerprints[0]);
    if !same {
        return (found.to_vec(), Vec::new());
    }
    let mut sorted = found.to_vec();
    // The oldest stays: the one other tools may already point at.
    sorted.sort_by(|a, b| {
        (a.created_at.unwrap_or(i64::MAX), &a.id).cmp(&(b.created_at.unwrap_or(i64::MAX), &b.id))
    });
    let extras = sorted.split_off(1);
    (sorted, extras)
}

fn dedupe_row(sandbox: &str, name: &str, extra: &Connection, kept: &Connection) -> Change {
    Change {
        sandbox: sandbox.into(),
        name: name.into(),
        action: Action::Delete,
        connection_id: Some(extra.id.clone()),
        etag: Some(extra.etag.clone()),
        fields: Vec::new(),
        diff: Vec::new(),
        reason: format!(
            "dedupe: a duplicate atsprov made; the oldest (id {}) is kept",
            kept.id
        )
        .into(),
        desired: None,
    }
}

/// The order of plans and reports: the manifest's sandbox order, then name, then id.
pub fn place<'a>(
    order: &[String],
    sandbox: &'a str,
    name: &'a str,
    id: &'a Option<String>,
) -> (usize, &'a str, &'a str, Option<&'a str>) {
    (rank(order, sandbox), sandbox, name, id.as_deref())
}

/// Diffs one declared connection against the live connections of that name
/// (already narrowed to this manifest's business).
pub fn diff_one(index: usize, want: &DesiredConnection, found: &[&Connection]) -> Change {
    let mut change = Change {
        sandbox: want.sandbox.clone(),
        name: want.name.clone(),
        action: Action::Create,
        connection_id: None,
        etag: None,
        fields: Vec::new(),
        diff: Vec::new(),
        reason: "not present in the sandbox".into(),
        desired: Some(index),
    };
    let live = match found {
        [] => return change,
        [one] if one.is_deleting() => {
            change.reason = "not present (the connection of that name is being deleted)".into();
            return change;
        }
        [one] => *one,
        many => {
            let mut ids: Vec<&str> = many.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            change.action = Action::Conflict;
            change.reason = format!(
                "{} connections named `{}` exist ({}); delete the extras in AEP so one remains, or rename the account",
                many.len(),
                want.name,
                ids.join(", ")
            ).into();
            return change;
        }
    };
    change.connection_id = Some(live.id.clone());
    change.etag = Some(live.etag.clone());
    let description = live.description.as_deref().unwrap_or("");
    let marked = ownership::parse(description);
    let owner = want.owner.as_deref();
    match marked.fingerprint {
        Some(_) if !marked.is_managed_by(owner) => {
            change.action = Action::Conflict;
            change.reason = format!(
                "a connection named `{}` is managed by another manifest (owner {}); rename the account, or change `owner`",
                want.name,
                marked.owner.unwrap_or("(none)")
            ).into();
        }
        None if want.adopt => {
            change.action = Action::Update;
            change.fields = vec![Field::Description, Field::Credentials];
            if description != &*want.description {
                change.diff.push(Diff::new(
                    DiffField::Description,
                    live.description.as_deref(),
                    Some(&want.description),
                ));
            }
            // What can be read back of its credentials (the account name,
            // the suffix, the Table endpoint; never the key): a reviewer
            // sees an adoption that points the connection elsewhere.
            change.diff.extend(
                credential_diff(live, want, &want.fingerprint)
                    .into_iter()
                    .filter(|d| d.field != DiffField::Key),
            );
            change.diff.push(Diff::new(DiffField::Marker, None, None));
            change.reason = format!(
                "adopt: take over the existing connection not managed by atsprov; {}",
                describe(&change.diff)
            )
            .into();
        }
        None => {
            change.action = Action::Conflict;
            change.reason = format!(
                "a connection named `{}` exists but is not managed by atsprov; set `adopt = true` on the account to take it over, or rename the account",
                want.name
            ).into();
        }
        Some(fingerprint) => {
            if marked.text != &*want.description {
                change.fields.push(Field::Description);
                change.diff.push(Diff::new(
                    DiffField::Description,
                    Some(marked.text),
                    Some(&want.description),
                ));
            }
            if fingerprint != want.fingerprint {
                change.fields.push(Field::Credentials);
                change
                    .diff
                    .extend(credential_diff(live, want, &fingerprint));
            }
            if change.fields.is_empty() {
                change.action = Action::NoOp;
                change.reason = "up to date".into();
            } else {
                change.action = Action::Update;
                change.reason = describe(&change.diff).into();
            }
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::secret::Secret;
    use crate::wire::{PlainParts, SpecRef};

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
                id: crate::wire::ATS_CONNECTION_SPEC_ID.into(),
                version: Some("1.0".into()),
            },
            state: Some("enabled".into()),
            etag: format!("\"etag-{id}\""),
            created_at: None,
            plain: Default::default(),
        }
    }

    fn opts(prune: bool) -> Options<'static> {
        Options {
            prune,
            ..Options::default()
        }
    }

    fn managed(id: &str, d: &DesiredConnection) -> Connection {
        live(id, &d.name, &d.marked_description())
    }

    fn row(p: &Plan, name: &str) -> (Action, Vec<Field>) {
        let c = p
            .changes
            .iter()
            .find(|c| &*c.name == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        (c.action, c.fields.clone())
    }

    #[test]
    fn targets_leave_out_live_connections_of_other_names() {
        let kept = want("prod", "sales-eu", "d", "k1", false);
        let gone = want("prod", "sales-old", "d", "k2", false);
        let other = want("prod", "crm-old", "d", "k3", false);
        let live = BTreeMap::from([(
            "prod".to_owned(),
            vec![
                managed("1", &kept),
                managed("2", &gone),
                managed("3", &other),
            ],
        )]);
        let targets = ["sales-*".to_owned()];
        let options = Options {
            prune: true,
            targets: &targets,
            ..Options::default()
        };
        let p = plan(std::slice::from_ref(&kept), &live, Vec::new(), options);
        assert_eq!(row(&p, "sales-eu").0, Action::NoOp);
        assert_eq!(row(&p, "sales-old").0, Action::Delete);
        assert!(
            p.changes.iter().all(|c| &*c.name != "crm-old"),
            "an orphan outside the targets is not this run's business"
        );
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

        let p = plan(&desired, &live_map, Vec::new(), opts(false));
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
        // Two managed with one fingerprint: a duplicate atsprov made; the
        // oldest stays (ids sort when no creation time is known).
        let twice: Vec<_> = p.changes.iter().filter(|c| &*c.name == "twice").collect();
        assert_eq!(twice.len(), 2);
        assert_eq!(
            (twice[0].action, twice[0].connection_id.as_deref()),
            (Action::NoOp, Some("6"))
        );
        assert_eq!(
            (twice[1].action, twice[1].connection_id.as_deref()),
            (Action::Delete, Some("7"))
        );
        assert!(
            twice[1].reason.starts_with("dedupe:"),
            "{}",
            twice[1].reason
        );
        assert_eq!(row(&p, "gone").0, Action::Orphan);
        assert!(p.changes.iter().all(|c| &*c.name != "unrelated"));
        assert_eq!(
            p.summary(),
            Summary {
                create: 1,
                update: 3,
                no_op: 2,
                delete: 1,
                conflict: 1,
                orphan: 1
            }
        );

        let pruned = plan(&desired, &live_map, Vec::new(), opts(true));
        assert_eq!(row(&pruned, "gone").0, Action::Delete);
        assert_eq!(pruned.summary().delete, 2);
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
        let p = plan(&desired, &live_map, errors, opts(false));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(&*p.changes[0].sandbox, "prod");
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn sandboxes_are_isolated() {
        let d = want("dev", "a", "d", "k", false);
        let desired = vec![d.clone()];
        // The same name managed in prod is not a match for dev, and prod is not planned.
        let live_map = BTreeMap::from([("dev".to_owned(), Vec::new())]);
        let p = plan(&desired, &live_map, Vec::new(), opts(false));
        assert_eq!(row(&p, "a").0, Action::Create);
    }

    fn with(mut c: Connection, f: impl FnOnce(&mut Connection)) -> Connection {
        f(&mut c);
        c
    }

    fn in_prod(connections: Vec<Connection>) -> BTreeMap<String, Vec<Connection>> {
        BTreeMap::from([("prod".to_owned(), connections)])
    }

    #[test]
    fn owners_share_a_sandbox_without_touching_each_other() {
        let team_a: Option<Arc<str>> = Some("team-a".into());
        let mine = want("prod", "mine", "d", "k1", false).owned_by(team_a.clone());
        let theirs_declared =
            want("prod", "shared-name", "d", "k2", false).owned_by(team_a.clone());
        let theirs = want("prod", "shared-name", "d", "k2", false).owned_by(Some("team-b".into()));
        let unowned = want("prod", "legacy", "d", "k3", false);
        let my_old = want("prod", "my-old", "d", "k4", false).owned_by(team_a.clone());
        let live = in_prod(vec![
            managed("1", &mine),
            managed("2", &theirs),
            managed("3", &unowned),
            managed("4", &my_old),
        ]);
        let options = Options {
            prune: true,
            owner: Some("team-a"),
            sandboxes: &[],
            targets: &[],
        };
        let p = plan(&[mine, theirs_declared], &live, Vec::new(), options);
        assert_eq!(row(&p, "mine").0, Action::NoOp);
        // Another owner's connection of the same name is not ours to match:
        // this manifest creates its own, and the row says why a second one.
        assert_eq!(row(&p, "shared-name").0, Action::Create);
        let reason = &p
            .changes
            .iter()
            .find(|c| &*c.name == "shared-name")
            .unwrap()
            .reason;
        assert_eq!(
            reason,
            "not present for this manifest's owner (`team-a`); a connection named `shared-name` of another owner (`team-b`) exists and is left alone, so this makes a second one (if `owner` was changed, set it back)"
        );
        assert_eq!(
            p.changes
                .iter()
                .find(|c| &*c.name == "mine")
                .unwrap()
                .reason,
            "up to date"
        );
        // Only this owner's undeclared connections are pruned.
        assert_eq!(row(&p, "my-old").0, Action::Delete);
        assert!(p.changes.iter().all(|c| &*c.name != "legacy"), "{p:?}");

        // A manifest without an owner owns the markers without one, only.
        let p = plan(&[], &live, Vec::new(), opts(true));
        let deleted: Vec<&str> = p.changes.iter().map(|c| &*c.name).collect();
        assert_eq!(deleted, ["legacy"]);
    }

    #[test]
    fn a_changed_owner_plans_second_connections_and_says_so() {
        // Made by a manifest without `owner`, planned after `owner = "team-b"` was added.
        let before = want("prod", "sales-eu", "d", "k1", false);
        let after = want("prod", "sales-eu", "d", "k1", false).owned_by(Some("team-b".into()));
        let live = in_prod(vec![managed("1", &before)]);
        let options = Options {
            prune: true,
            owner: Some("team-b"),
            sandboxes: &[],
            targets: &[],
        };
        let p = plan(&[after], &live, Vec::new(), options);
        assert_eq!(p.changes.len(), 1, "the old one is not pruned: {p:?}");
        let change = &p.changes[0];
        assert_eq!(change.action, Action::Create);
        assert!(
            change.reason.contains("of another owner (none) exists")
                && change
                    .reason
                    .contains("if `owner` was changed, set it back"),
            "{}",
            change.reason
        );
    }

    #[test]
    fn other_specs_and_deleting_connections_are_not_our_business() {
        let a = want("prod", "a", "d", "k", false);
        let b = want("prod", "b", "d", "k", false);
        let gone = want("prod", "gone", "d", "k", false);
        let live = in_prod(vec![
            with(managed("1", &a), |c| {
                c.state = Some("delete-finalizing".into())
            }),
            with(live("2", "b", "made by hand"), |c| {
                c.connection_spec.id = "another-spec".into()
            }),
            with(managed("3", &gone), |c| {
                c.connection_spec.id = "another-spec".into()
            }),
        ]);
        let p = plan(&[a, b], &live, Vec::new(), opts(true));
        assert_eq!(row(&p, "a").0, Action::Create);
        assert_eq!(row(&p, "b").0, Action::Create);
        assert!(p.changes.iter().all(|c| &*c.name != "gone"), "{p:?}");
    }

    #[test]
    fn dedupe_keeps_the_oldest_and_only_for_one_fingerprint() {
        let d = want("prod", "d", "x", "k", false);
        let listed = in_prod(vec![
            with(managed("b-newest", &d), |c| c.created_at = Some(300)),
            with(managed("c-oldest", &d), |c| c.created_at = Some(100)),
            with(managed("a-middle", &d), |c| c.created_at = Some(200)),
        ]);
        let p = plan(std::slice::from_ref(&d), &listed, Vec::new(), opts(false));
        let kept: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::NoOp)
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].connection_id.as_deref(), Some("c-oldest"));
        let mut deleted: Vec<&str> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .filter_map(|c| c.connection_id.as_deref())
            .collect();
        deleted.sort_unstable();
        assert_eq!(deleted, ["a-middle", "b-newest"]);

        // Different fingerprints, or a hand-made one among them: a person decides.
        let other_key = want("prod", "d", "x", "k-other", false);
        for second in [managed("2", &other_key), live("2", "d", "by hand")] {
            let listed = in_prod(vec![managed("1", &d), second]);
            let p = plan(std::slice::from_ref(&d), &listed, Vec::new(), opts(false));
            assert_eq!(p.summary().conflict, 1, "{p:?}");
            assert_eq!(p.summary().delete, 0, "{p:?}");
        }
    }

    #[test]
    fn sandboxes_keep_the_manifests_order() {
        let desired = vec![
            want("prod", "a", "d", "k", false),
            want("stage", "a", "d", "k", false),
            want("dev", "a", "d", "k", false),
        ];
        let live: BTreeMap<String, Vec<Connection>> = ["dev", "prod", "stage"]
            .into_iter()
            .map(|s| (s.to_owned(), Vec::new()))
            .collect();
        let order = ["stage".to_owned(), "prod".to_owned(), "dev".to_owned()];
        let options = Options {
            sandboxes: &order,
            ..Options::default()
        };
        let p = plan(&desired, &live, Vec::new(), options);
        let seen: Vec<&str> = p.changes.iter().map(|c| &*c.sandbox).collect();
        assert_eq!(seen, ["stage", "prod", "dev"]);
    }

    #[test]
    fn the_basis_changes_with_the_manifest_or_the_live_state_only() {
        let d = want("prod", "a", "d", "k", false);
        let listed = in_prod(vec![managed("1", &d)]);
        let base = plan(std::slice::from_ref(&d), &listed, Vec::new(), opts(false)).basis;
        assert_eq!(
            base,
            plan(std::slice::from_ref(&d), &listed, Vec::new(), opts(false)).basis
        );
        assert!(base.manifest.starts_with("sha256:") && base.manifest.len() == 71);

        let rotated = want("prod", "a", "d", "k2", false);
        let b = plan(
            std::slice::from_ref(&rotated),
            &listed,
            Vec::new(),
            opts(false),
        )
        .basis;
        assert_ne!(b.manifest, base.manifest);
        assert_eq!(b.live, base.live);

        let b = plan(std::slice::from_ref(&d), &listed, Vec::new(), opts(true)).basis;
        assert_ne!(b.manifest, base.manifest, "--prune plans differently");

        let edited = in_prod(vec![with(managed("1", &d), |c| {
            c.etag = "\"other\"".into()
        })]);
        let b = plan(std::slice::from_ref(&d), &edited, Vec::new(), opts(false)).basis;
        assert_eq!(b.manifest, base.manifest);
        assert_ne!(b.live, base.live);

        let more = in_prod(vec![managed("1", &d), live("2", "new", "by hand")]);
        let b = plan(std::slice::from_ref(&d), &more, Vec::new(), opts(false)).basis;
        assert_ne!(b.live, base.live);
    }

    fn cs(account: &str, key: &str, suffix: Option<&str>) -> String {
        let mut text =
            format!("DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key}");
        if let Some(suffix) = suffix {
            text.push_str(";EndpointSuffix=");
            text.push_str(suffix);
        }
        text
    }

    fn want_cs(
        name: &str,
        description: &str,
        connection_string: &str,
        adopt: bool,
    ) -> DesiredConnection {
        DesiredConnection::new(
            ORG,
            "prod",
            name,
            description,
            Secret::new(connection_string),
            adopt,
            0,
        )
    }

    /// A live connection as the API shows it: key masked, plain parts readable.
    fn shown(id: &str, d: &DesiredConnection) -> Connection {
        let masked = d
            .connection_string
            .expose()
            .replace("AccountKey=", "AccountKey=***;x=");
        with(managed(id, d), |c| {
            c.plain = PlainParts::of_connection_string(&masked)
        })
    }

    #[test]
    fn a_live_table_endpoint_is_shown_without_its_user_or_password() {
        // A connection an earlier atsprov (or someone else) made with a
        // `TableEndpoint` carrying credentials; the manifest's string, as
        // sent to AEP, has none.
        const KEY: &str = "a2V5LW9uZQ==";
        let before = want_cs(
            "n",
            "d",
            &format!(
                "{};TableEndpoint=http://u:SECRETPW@10.1.1.1/saleseu",
                cs("saleseu", KEY, None)
            ),
            false,
        );
        let after = want_cs("n", "d", &cs("saleseu", KEY, None), false);
        let p = plan(
            std::slice::from_ref(&after),
            &in_prod(vec![shown("1", &before)]),
            Vec::new(),
            opts(false),
        );
        let diff = &p.changes[0].diff;
        assert_eq!(
            diff.iter()
                .map(|d| (d.field, d.old.as_deref(), d.new.as_deref()))
                .collect::<Vec<_>>(),
            [(
                DiffField::TableEndpoint,
                Some("http://***@10.1.1.1/saleseu"),
                None
            )]
        );
        for shown in [
            p.changes[0].reason.to_string(),
            crate::render::plan_text(&p, false),
            crate::render::plan_json(&p),
            crate::render::plan_markdown(&p),
        ] {
            assert!(!shown.contains("SECRETPW"), "{shown}");
            assert!(!shown.contains("u:"), "{shown}");
            assert!(shown.contains("http://***@10.1.1.1/saleseu"), "{shown}");
        }
    }

    #[test]
    fn updates_say_what_changes_from_what_to_what() {
        const KEY1: &str = "a2V5LW9uZQ==";
        const KEY2: &str = "a2V5LXR3bw==";
        let fields = |p: &Plan| {
            p.changes[0]
                .diff
                .iter()
                .map(|d| (d.field, d.old.clone(), d.new.clone()))
                .collect::<Vec<_>>()
        };
        let s = |v: &str| Some(v.to_owned());

        // The account name moved: shown from the live connection string's plain part.
        let before = want_cs("n", "d", &cs("oldacct", KEY1, None), false);
        let after = want_cs("n", "d", &cs("newacct", KEY1, None), false);
        let p = plan(
            std::slice::from_ref(&after),
            &in_prod(vec![shown("1", &before)]),
            Vec::new(),
            opts(false),
        );
        assert_eq!(
            fields(&p),
            [(DiffField::AccountName, s("oldacct"), s("newacct"))]
        );
        assert_eq!(p.changes[0].fields, [Field::Credentials]);

        // Only the key: its fingerprints, never the key.
        let after = want_cs("n", "d", &cs("oldacct", KEY2, None), false);
        let p = plan(
            std::slice::from_ref(&after),
            &in_prod(vec![shown("1", &before)]),
            Vec::new(),
            opts(false),
        );
        assert_eq!(
            fields(&p),
            [(
                DiffField::Key,
                s(before.fingerprint.as_str()),
                s(after.fingerprint.as_str())
            )]
        );
        assert!(!p.changes[0].reason.contains(KEY2));

        // The suffix and the description.
        let after = want_cs(
            "n",
            "new words",
            &cs("oldacct", KEY1, Some("core.chinacloudapi.cn")),
            false,
        );
        let p = plan(
            std::slice::from_ref(&after),
            &in_prod(vec![shown("1", &before)]),
            Vec::new(),
            opts(false),
        );
        assert_eq!(
            fields(&p),
            [
                (DiffField::Description, s("d"), s("new words")),
                (
                    DiffField::EndpointSuffix,
                    s("core.windows.net"),
                    s("core.chinacloudapi.cn")
                ),
            ]
        );
        assert_eq!(
            p.changes[0].reason,
            "description: \"d\" → \"new words\"; endpoint suffix: core.windows.net → core.chinacloudapi.cn"
        );

        // Adopting a connection made in the UI with no description at all.
        let adopt = want_cs("n", "d", &cs("oldacct", KEY1, None), true);
        let ui = with(live("9", "n", ""), |c| c.description = None);
        let p = plan(
            std::slice::from_ref(&adopt),
            &in_prod(vec![ui]),
            Vec::new(),
            opts(false),
        );
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(
            fields(&p),
            [
                (DiffField::Description, None, s("d")),
                (DiffField::Marker, None, None)
            ]
        );

        // Adopting one that reads another storage account: the plan says so.
        let elsewhere = with(live("9", "n", "d"), |c| {
            c.plain = PlainParts {
                account_name: Some("crmprod".to_owned()),
                ..PlainParts::default()
            };
        });
        let p = plan(
            std::slice::from_ref(&adopt),
            &in_prod(vec![elsewhere]),
            Vec::new(),
            opts(false),
        );
        assert_eq!(
            fields(&p),
            [
                (DiffField::AccountName, s("crmprod"), s("oldacct")),
                (DiffField::Marker, None, None)
            ]
        );
        assert!(
            p.changes[0].reason.contains("crmprod → oldacct"),
            "{}",
            p.changes[0].reason
        );
    }
}
