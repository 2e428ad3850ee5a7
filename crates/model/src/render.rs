//! Plans as people and machines read them: text, `atsprov.plan/v1` JSON and Markdown.
//!
//! Pure string functions; whether to colour is the caller's decision.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use crate::escape::{md_cell, md_code, terminal};
use crate::plan::{Action, Basis, Change, Diff, Field, Plan, SandboxError, Summary};

/// The schema tag of the JSON plan.
pub const PLAN_SCHEMA: &str = "atsprov.plan/v1";

/// What `atsprov plan --format json` prints: the changes a plan holds, per
/// sandbox and connection name, and the sandboxes that could not be read.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "atsprov plan")]
pub(crate) struct PlanJson<'a> {
    /// Always `atsprov.plan/v1`; later versions of v1 only add fields.
    #[schemars(extend("const" = PLAN_SCHEMA))]
    schema: &'static str,
    /// What the plan was made from: digests of the desired state and the live
    /// connections, so that a saved plan can be checked for staleness.
    basis: &'a Basis,
    /// The options the plan was made with; `apply --plan FILE` plans again
    /// with the same ones.
    options: OptionsJson<'a>,
    /// How many changes of each action.
    summary: Summary,
    /// One row per declared connection and per live connection atsprov
    /// manages, sorted by sandbox then name.
    changes: Vec<ChangeJson<'a>>,
    /// Sandboxes whose live connections could not be read; their declared
    /// connections are not in `changes`.
    errors: &'a [SandboxError],
}

/// The options of a JSON plan.
#[derive(Serialize, JsonSchema)]
struct OptionsJson<'a> {
    /// Made with `--prune`.
    prune: bool,
    /// The sandboxes planned, in the manifest's order (all the manifest
    /// declares, or those chosen with `--sandbox`).
    sandboxes: &'a [String],
    /// The `--target` patterns (empty: every account).
    targets: &'a [String],
}

/// What `apply --plan FILE` needs of a saved JSON plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SavedPlan {
    /// The digests the plan was made from.
    pub basis: Basis,
    /// Made with `--prune`.
    pub prune: bool,
    /// The sandboxes planned.
    pub sandboxes: Vec<String>,
    /// The `--target` patterns it was made with.
    pub targets: Vec<String>,
}

/// Reads a plan saved by `plan --format json --out FILE`: the schema tag,
/// the basis and the options. Says what is wrong when it is not one.
pub fn read_saved_plan(text: &str) -> Result<SavedPlan, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        schema: Option<String>,
        basis: Option<Basis>,
        options: Option<Options>,
    }
    #[derive(serde::Deserialize)]
    struct Options {
        prune: bool,
        sandboxes: Vec<String>,
        #[serde(default)]
        targets: Vec<String>,
    }
    let doc: Doc = serde_json::from_str(text)
        .map_err(|err| format!("not a JSON plan ({err}); save one with `atsprov plan MANIFEST --format json --out FILE`"))?;
    if doc.schema.as_deref() != Some(PLAN_SCHEMA) {
        return Err(format!(
            "not an `{PLAN_SCHEMA}` plan (its `schema` is {}); save one with `atsprov plan MANIFEST --format json --out FILE`",
            doc.schema
                .map_or_else(|| "missing".to_owned(), |s| format!("`{s}`"))
        ));
    }
    match (doc.basis, doc.options) {
        (Some(basis), Some(options)) => Ok(SavedPlan {
            basis,
            prune: options.prune,
            sandboxes: options.sandboxes,
            targets: options.targets,
        }),
        _ => Err(
            "the plan has no `basis` or `options` (made by an older atsprov?); plan again"
                .to_owned(),
        ),
    }
}

/// One row of the JSON plan.
#[derive(Serialize, JsonSchema)]
struct ChangeJson<'a> {
    /// The sandbox.
    sandbox: &'a str,
    /// The connection's name.
    name: &'a str,
    /// What `apply` would do.
    action: Action,
    /// The live connection's id, when there is exactly one.
    connection_id: Option<&'a str>,
    /// For an update, the fields that change.
    fields: Vec<Field>,
    /// For an update, each change with its old and new value (never a secret).
    diff: &'a [Diff],
    /// Why, in words a person can act on.
    reason: &'a str,
}

/// The plan as `atsprov.plan/v1` JSON (pretty, stable order, newline at the end).
pub fn plan_json(plan: &Plan) -> String {
    let doc = PlanJson {
        schema: PLAN_SCHEMA,
        basis: &plan.basis,
        options: OptionsJson {
            prune: plan.prune,
            sandboxes: &plan.sandboxes,
            targets: &plan.targets,
        },
        summary: plan.summary(),
        changes: plan
            .changes
            .iter()
            .map(|c| ChangeJson {
                sandbox: &c.sandbox,
                name: &c.name,
                action: c.action,
                connection_id: c.connection_id.as_deref(),
                fields: c.fields.clone(),
                diff: &c.diff,
                reason: &c.reason,
            })
            .collect(),
        errors: &plan.errors,
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("plan JSON serializes");
    text.push('\n');
    text
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::NoOp => "=",
        Action::Delete => "-",
        Action::Conflict => "!",
        Action::Orphan => "?",
    }
}

fn ansi(action: Action) -> &'static str {
    match action {
        Action::Create => "\x1b[32m",
        Action::Update => "\x1b[33m",
        Action::NoOp => "\x1b[2m",
        Action::Delete => "\x1b[31m",
        Action::Conflict => "\x1b[1;35m",
        Action::Orphan => "\x1b[36m",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line summary: `Plan: 3 to create, 1 to update, 0 to delete, 2 conflicts, 1 orphan`.
pub fn summary_line(summary: &Summary) -> String {
    format!(
        "Plan: {} to create, {} to update, {} to delete, {}, {} ({} unchanged)",
        summary.create,
        summary.update,
        summary.delete,
        plural(summary.conflict, "conflict", "conflicts"),
        plural(summary.orphan, "orphan", "orphans"),
        summary.no_op,
    )
}

fn details(change: &Change) -> String {
    let id = change.connection_id.as_deref();
    match (change.action, id) {
        (Action::Update | Action::Delete | Action::Orphan, Some(id)) => {
            format!("{} (id {id})", change.reason)
        }
        _ => change.reason.to_string(),
    }
}

/// One sandbox's part of a plan, as the renderers show it.
struct SandboxView<'a> {
    sandbox: &'a str,
    error: Option<&'a SandboxError>,
    /// Every change but the no-ops, which are only counted.
    rows: Vec<&'a Change>,
    unchanged: usize,
}

/// The plan grouped by sandbox, in the manifest's order, unreadable ones included.
fn by_sandbox(plan: &Plan) -> Vec<SandboxView<'_>> {
    let mut views: Vec<SandboxView<'_>> = Vec::new();
    for change in &plan.changes {
        let i = match views.iter().position(|v| v.sandbox == &*change.sandbox) {
            Some(i) => i,
            None => {
                views.push(SandboxView {
                    sandbox: &change.sandbox,
                    error: None,
                    rows: Vec::new(),
                    unchanged: 0,
                });
                views.len() - 1
            }
        };
        if change.action == Action::NoOp {
            views[i].unchanged += 1;
        } else {
            views[i].rows.push(change);
        }
    }
    for error in &plan.errors {
        match views.iter_mut().find(|v| v.sandbox == error.sandbox) {
            Some(view) => view.error = Some(error),
            None => views.push(SandboxView {
                sandbox: &error.sandbox,
                error: Some(error),
                rows: Vec::new(),
                unchanged: 0,
            }),
        }
    }
    views.sort_by(|a, b| (plan.rank(a.sandbox), a.sandbox).cmp(&(plan.rank(b.sandbox), b.sandbox)));
    views
}

/// The closing words of a plan: never "no changes" while a conflict or an
/// orphan is there to look at.
fn verdict(plan: &Plan, summary: &Summary) -> Option<String> {
    let mut lines = Vec::new();
    if !plan.errors.is_empty() {
        lines.push(format!(
            "{} could not be read: {}",
            plural(plan.errors.len(), "sandbox", "sandboxes"),
            plan.errors
                .iter()
                .map(|e| terminal(&e.sandbox).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if summary.conflict > 0 {
        lines.push(format!(
            "{} a person: each says what to do (`adopt = true`, or a rename).",
            plural(summary.conflict, "conflict needs", "conflicts need")
        ));
    }
    if summary.orphan > 0 {
        lines.push(format!(
            "{} left alone: managed by atsprov but no longer declared; `--prune` deletes {}.",
            plural(summary.orphan, "orphan", "orphans"),
            if summary.orphan == 1 { "it" } else { "them" }
        ));
    }
    if summary.is_clean() && plan.errors.is_empty() {
        lines.push("No changes: the live connections match the manifest.".to_owned());
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The plan for a terminal: grouped by sandbox, one line per change
/// (unchanged connections are counted, not listed), then the summary line.
pub fn plan_text(plan: &Plan, color: bool) -> String {
    let (off, bold) = if color {
        ("\x1b[0m", "\x1b[1m")
    } else {
        ("", "")
    };
    let mut out = String::new();
    for view in by_sandbox(plan) {
        let SandboxView {
            sandbox,
            error,
            rows,
            unchanged,
        } = view;
        let _ = writeln!(out, "{bold}Sandbox {}{off}", terminal(sandbox));
        if let Some(error) = error {
            let (red, reset) = if color { ("\x1b[31m", off) } else { ("", "") };
            let _ = writeln!(out, "  {red}error:{reset} {}", terminal(&error.error));
        }
        let names: Vec<_> = rows.iter().map(|c| terminal(&c.name)).collect();
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        for (change, name) in rows.into_iter().zip(names) {
            let (start, end) = if color {
                (ansi(change.action), off)
            } else {
                ("", "")
            };
            if change.diff.is_empty() {
                let _ = writeln!(
                    out,
                    "  {start}{} {name:<width$}  {:<8}{end}  {}",
                    symbol(change.action),
                    change.action.as_str(),
                    terminal(&details(change)),
                );
                continue;
            }
            let id = change
                .connection_id
                .as_deref()
                .map(|id| format!("(id {})", terminal(id)));
            let _ = writeln!(
                out,
                "  {start}{} {name:<width$}  {:<8}{end}  {}",
                symbol(change.action),
                change.action.as_str(),
                id.unwrap_or_default(),
            );
            for diff in &change.diff {
                let _ = writeln!(out, "      {}", terminal(&diff.describe()));
            }
        }
        if unchanged > 0 {
            let _ = writeln!(
                out,
                "  {} up to date",
                plural(unchanged, "connection", "connections")
            );
        }
        out.push('\n');
    }
    let summary = plan.summary();
    out.push_str(&summary_line(&summary));
    out.push('\n');
    if let Some(verdict) = verdict(plan, &summary) {
        out.push_str(&verdict);
        out.push('\n');
    }
    out
}

/// The plan as Markdown, a table per sandbox, fit for a CI job summary.
pub fn plan_markdown(plan: &Plan) -> String {
    let summary = plan.summary();
    let mut out = String::from("## atsprov plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(&summary));
    if let Some(verdict) = verdict(plan, &summary) {
        for line in verdict.lines() {
            let _ = writeln!(out, "{}\n", md_cell(line));
        }
    }
    for view in by_sandbox(plan) {
        let SandboxView {
            sandbox,
            error,
            rows,
            unchanged,
        } = view;
        let _ = writeln!(out, "### Sandbox {}\n", md_code(sandbox));
        if let Some(error) = error {
            let _ = writeln!(out, "> **Error:** {}\n", md_cell(&error.error));
        }
        if !rows.is_empty() {
            out.push_str("| | Connection | Action | Details |\n|---|---|---|---|\n");
            for c in rows {
                let details = if c.diff.is_empty() {
                    md_cell(&details(c))
                } else {
                    let mut lines: Vec<String> =
                        c.diff.iter().map(|d| md_cell(&d.describe())).collect();
                    if let Some(id) = &c.connection_id {
                        lines.push(format!("(id {})", md_cell(id)));
                    }
                    lines.join("<br>")
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {details} |",
                    symbol(c.action),
                    md_code(&c.name),
                    c.action.as_str(),
                );
            }
            out.push('\n');
        }
        if unchanged > 0 {
            let _ = writeln!(
                out,
                "{} up to date.\n",
                plural(unchanged, "connection", "connections")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DiffField, Field};

    fn change(
        sandbox: &str,
        name: &str,
        action: Action,
        fields: Vec<Field>,
        reason: &str,
    ) -> Change {
        let id = (action != Action::Create).then(|| format!("id-{name}"));
        Change {
            sandbox: sandbox.into(),
            name: name.into(),
            action,
            etag: id.as_ref().map(|_| "\"e\"".to_owned()),
            connection_id: id,
            fields,
            diff: Vec::new(),
            reason: reason.to_owned().into(),
            desired: None,
        }
    }

    fn with_diff(mut c: Change, diff: Vec<Diff>) -> Change {
        c.reason = diff
            .iter()
            .map(Diff::describe)
            .collect::<Vec<_>>()
            .join("; ")
            .into();
        c.diff = diff;
        c
    }

    fn diff(field: DiffField, old: &str, new: &str) -> Diff {
        Diff {
            field,
            old: Some(old.to_owned()),
            new: Some(new.to_owned()),
        }
    }

    /// A plan with every action and every diff kind, three sandboxes in the
    /// manifest's order (not alphabetical), one that could not be read, and
    /// a hostile name.
    fn every_action() -> Plan {
        Plan {
            basis: Basis {
                manifest: "sha256:m".to_owned(),
                live: "sha256:l".to_owned(),
            },
            sandboxes: vec!["prod".to_owned(), "stage".to_owned(), "dev".to_owned()],
            prune: false,
            targets: Vec::new(),
            changes: vec![
                change(
                    "dev",
                    "fresh",
                    Action::Create,
                    vec![],
                    "not present in the sandbox",
                ),
                change("dev", "same", Action::NoOp, vec![], "up to date"),
                change(
                    "dev",
                    "gone",
                    Action::Delete,
                    vec![],
                    "managed by atsprov and no longer declared",
                ),
                with_diff(
                    change(
                        "prod",
                        "rotated",
                        Action::Update,
                        vec![Field::Credentials],
                        "",
                    ),
                    vec![diff(DiffField::Key, "0011223344556677", "8899aabbccddeeff")],
                ),
                with_diff(
                    change(
                        "prod",
                        "both",
                        Action::Update,
                        vec![Field::Description, Field::Credentials],
                        "",
                    ),
                    vec![
                        diff(DiffField::Description, "Old text", "New | text"),
                        diff(DiffField::AccountName, "salesold", "salesnew"),
                        diff(
                            DiffField::EndpointSuffix,
                            "core.windows.net",
                            "core.chinacloudapi.cn",
                        ),
                        diff(
                            DiffField::TableEndpoint,
                            "http://127.0.0.1:1/a",
                            "http://127.0.0.1:2/a",
                        ),
                    ],
                ),
                change(
                    "prod",
                    "evil\x1b[2J|`name`\r\n",
                    Action::Conflict,
                    vec![],
                    "a connection named `evil\x1b[2J|name` exists but is not managed by atsprov",
                ),
                change(
                    "prod",
                    "by-hand",
                    Action::Conflict,
                    vec![],
                    "a connection named `by-hand` exists but is not managed by atsprov",
                ),
                change(
                    "prod",
                    "left",
                    Action::Orphan,
                    vec![],
                    "managed by atsprov and no longer declared; `--prune` deletes it",
                ),
            ],
            errors: vec![SandboxError {
                sandbox: "stage".to_owned(),
                error: "could not list connections: HTTP 403 2118-403 no access | pipe".to_owned(),
            }],
        }
    }

    #[test]
    fn every_action_in_every_format() {
        let plan = every_action();
        insta::assert_snapshot!("plan-text", plan_text(&plan, false));
        insta::assert_snapshot!("plan-json", plan_json(&plan));
        insta::assert_snapshot!("plan-markdown", plan_markdown(&plan));
        let coloured = plan_text(&plan, true);
        assert!(coloured.contains("\x1b[32m+ fresh"), "{coloured:?}");
        assert!(!plan_text(&plan, false).contains('\x1b'));
        for text in [plan_text(&plan, false), plan_markdown(&plan)] {
            assert!(!text.contains('\r'), "{text}");
            assert!(!text.contains("No changes"), "{text}");
        }
        let markdown = plan_markdown(&plan);
        for row in markdown.lines().filter(|l| l.starts_with("| `")) {
            let cells = row.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 5, "a name or detail broke the table: {row}");
        }
    }

    #[test]
    fn orphans_and_conflicts_are_never_no_changes() {
        for (action, words) in [
            (Action::Orphan, "1 orphan left alone"),
            (Action::Conflict, "1 conflict needs a person"),
        ] {
            let plan = Plan {
                basis: Basis::default(),
                sandboxes: vec!["dev".to_owned()],
                prune: false,
                targets: Vec::new(),
                changes: vec![
                    change("dev", "same", Action::NoOp, vec![], "up to date"),
                    change("dev", "x", action, vec![], "why"),
                ],
                errors: vec![],
            };
            for text in [plan_text(&plan, false), plan_markdown(&plan)] {
                assert!(!text.contains("No changes"), "{text}");
                assert!(text.contains(words), "{text}");
            }
        }
    }

    #[test]
    fn no_changes_says_so() {
        let plan = Plan {
            basis: Basis::default(),
            sandboxes: vec!["dev".to_owned()],
            prune: false,
            targets: Vec::new(),
            changes: vec![change("dev", "same", Action::NoOp, vec![], "up to date")],
            errors: vec![],
        };
        let text = plan_text(&plan, false);
        assert!(
            text.ends_with("No changes: the live connections match the manifest.\n"),
            "{text}"
        );
    }

    #[test]
    fn a_saved_plan_reads_back_its_basis_and_options() {
        let mut plan = every_action();
        plan.prune = true;
        let saved = read_saved_plan(&plan_json(&plan)).unwrap();
        assert_eq!(saved.basis, plan.basis);
        assert!(saved.prune);
        assert_eq!(saved.sandboxes, plan.sandboxes);
        for bad in [
            "",
            "[]",
            r#"{"schema": "atsprov.report/v1"}"#,
            r#"{"schema": "atsprov.plan/v1"}"#,
        ] {
            let err = read_saved_plan(bad).unwrap_err();
            assert!(err.contains("plan"), "{err}");
        }
    }
}
