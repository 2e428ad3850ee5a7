//! The results report of `apply`: `atsprov.report/v1` JSON, Markdown for a CI
//! job summary, and JUnit XML with one test case per item.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::Serialize;

use crate::escape::{md_cell, md_code, terminal, xml};
use crate::plan::{Action, place};

mod item;
mod timings;

pub use item::{ErrorKind, ItemError, ReportItem};
pub use timings::{Timings, millis};

/// The schema tag of the JSON report.
pub const REPORT_SCHEMA: &str = "atsprov.report/v1";

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Already as declared.
    Unchanged,
    /// Deleted (`--prune`).
    Deleted,
    /// Failed; `error` says why.
    Failed,
    /// Not touched: conflicts, orphans, and work not started after Ctrl-C.
    Skipped,
}

impl Status {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Updated => "updated",
            Status::Unchanged => "unchanged",
            Status::Deleted => "deleted",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    /// Every status, in report order.
    pub const ALL: [Status; 6] = [
        Status::Created,
        Status::Updated,
        Status::Unchanged,
        Status::Deleted,
        Status::Failed,
        Status::Skipped,
    ];
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReportSummary {
    /// Every item.
    pub total: usize,
    /// Created.
    pub created: usize,
    /// Updated.
    pub updated: usize,
    /// Unchanged.
    pub unchanged: usize,
    /// Deleted.
    pub deleted: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl ReportSummary {
    /// Counts the items.
    pub fn of(items: &[ReportItem]) -> Self {
        let mut s = ReportSummary {
            total: items.len(),
            ..Self::default()
        };
        for item in items {
            *s.slot(item.status) += 1;
        }
        s
    }

    fn slot(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Created => &mut self.created,
            Status::Updated => &mut self.updated,
            Status::Unchanged => &mut self.unchanged,
            Status::Deleted => &mut self.deleted,
            Status::Failed => &mut self.failed,
            Status::Skipped => &mut self.skipped,
        }
    }

    /// The count of one status.
    pub fn count(&self, status: Status) -> usize {
        let mut copy = *self;
        *copy.slot(status)
    }
}

/// What `apply --report FILE.json` writes: what became of every declared
/// connection and every orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(title = "atsprov report")]
pub struct Report {
    /// Always `atsprov.report/v1`; later versions of v1 only add fields.
    #[schemars(extend("const" = REPORT_SCHEMA))]
    pub schema: &'static str,
    /// RFC 3339, UTC, milliseconds.
    pub started_at: String,
    /// RFC 3339, UTC, milliseconds.
    pub finished_at: String,
    /// True for `apply --dry-run`.
    pub dry_run: bool,
    /// True when the run was interrupted (Ctrl-C, SIGTERM) and work was left
    /// undone: writes not started, or the wait for the connections it made
    /// to show in listings.
    pub interrupted: bool,
    /// Counts per status.
    pub summary: ReportSummary,
    /// How long the phases of the run took. Added within v1: reports of
    /// older versions have no such field (not required in the schema).
    #[serde(default)]
    pub timings: Timings,
    /// Every item, sorted by sandbox then name.
    pub items: Vec<ReportItem>,
}

/// A time as RFC 3339 UTC with milliseconds.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl Report {
    /// Builds a report; sorts the items and counts them.
    pub fn new(
        started: SystemTime,
        finished: SystemTime,
        dry_run: bool,
        interrupted: bool,
        mut items: Vec<ReportItem>,
    ) -> Self {
        items.sort_by(|a, b| {
            place(&[], &a.sandbox, &a.name, &a.connection_id).cmp(&place(
                &[],
                &b.sandbox,
                &b.name,
                &b.connection_id,
            ))
        });
        Self {
            schema: REPORT_SCHEMA,
            started_at: timestamp(started),
            finished_at: timestamp(finished),
            dry_run,
            interrupted,
            summary: ReportSummary::of(&items),
            timings: Timings::default(),
            items,
        }
    }

    /// The report with the phases' `timings`.
    pub fn with_timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// The items in the manifest's sandbox order (`sandboxes`), then by name.
    pub fn in_order(mut self, sandboxes: &[String]) -> Self {
        self.items.sort_by(|a, b| {
            place(sandboxes, &a.sandbox, &a.name, &a.connection_id).cmp(&place(
                sandboxes,
                &b.sandbox,
                &b.name,
                &b.connection_id,
            ))
        });
        self
    }

    /// `atsprov.report/v1` JSON, pretty, newline at the end.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report JSON serializes");
        text.push('\n');
        text
    }

    /// [`Report::to_json`] written into `out` as it is made, never held whole.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// Markdown for a CI job summary: counts, then every item that is not unchanged.
    pub fn to_markdown(&self) -> String {
        let s = &self.summary;
        let mut out = String::from("## atsprov apply\n\n");
        if self.dry_run {
            out.push_str("_Dry run: nothing was written._\n\n");
        }
        if self.interrupted {
            out.push_str("**Interrupted:**");
            let created = s.created;
            if created == 0 || self.items.iter().any(never_started) {
                out.push_str(" work not started was skipped; run `apply` again to finish.");
            }
            // An interrupt ends (or skips) the wait for new connections to
            // show in listings: the next run may not see them yet.
            if created > 0 {
                let _ = write!(
                    out,
                    " The {created} connection(s) made by this run may not show in listings yet: wait a little before the next `plan` or `apply`, or it may create them again."
                );
            }
            out.push_str("\n\n");
        }
        let _ = write!(
            out,
            "Started {}, finished {}.",
            self.started_at, self.finished_at
        );
        let t = &self.timings;
        let _ = writeln!(
            out,
            " Plan {} ms, writes {} ms, waiting for listings {} ms.\n",
            t.plan_ms, t.write_ms, t.settle_ms
        );
        out.push_str("| total | created | updated | unchanged | deleted | failed | skipped |\n");
        out.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            s.total, s.created, s.updated, s.unchanged, s.deleted, s.failed, s.skipped
        );
        let rows: Vec<&ReportItem> = self
            .items
            .iter()
            .filter(|i| i.status != Status::Unchanged)
            .collect();
        if !rows.is_empty() {
            out.push_str(
                "| Sandbox | Connection | Action | Status | Connection id | Attempts | Error |\n",
            );
            out.push_str("|---|---|---|---|---|---:|---|\n");
            for i in rows {
                let status = if i.status == Status::Failed {
                    "**failed**"
                } else {
                    i.status.as_str()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md_code(&i.sandbox),
                    md_code(&i.name),
                    action_str(i.action),
                    status,
                    i.connection_id.as_deref().map(md_cell).unwrap_or_default(),
                    i.attempts,
                    i.error
                        .as_ref()
                        .map(|e| md_cell(&e.to_string()))
                        .unwrap_or_default(),
                );
            }
            out.push('\n');
        }
        out
    }

    /// JUnit XML: a test suite per sandbox, a test case per item; failed
    /// items are failures, skipped items are skipped.
    pub fn to_junit(&self) -> String {
        let s = &self.summary;
        let total_ms: u64 = self.items.iter().map(|i| i.duration_ms).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"atsprov apply\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            s.total,
            s.failed,
            s.skipped,
            seconds(total_ms),
            xml(&self.started_at)
        );
        let mut sandboxes: Vec<&str> = Vec::new();
        for item in &self.items {
            if !sandboxes.contains(&&*item.sandbox) {
                sandboxes.push(&item.sandbox);
            }
        }
        for sandbox in sandboxes {
            let items: Vec<&ReportItem> = self
                .items
                .iter()
                .filter(|i| &*i.sandbox == sandbox)
                .collect();
            let failed = items.iter().filter(|i| i.status == Status::Failed).count();
            let skipped = items.iter().filter(|i| i.status == Status::Skipped).count();
            let ms: u64 = items.iter().map(|i| i.duration_ms).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{}\">",
                xml(sandbox),
                items.len(),
                seconds(ms)
            );
            for i in items {
                let _ = write!(
                    out,
                    "    <testcase classname=\"atsprov.{}\" name=\"{}\" time=\"{}\">",
                    xml(&i.sandbox),
                    xml(&i.name),
                    seconds(i.duration_ms)
                );
                let error = i
                    .error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                match i.status {
                    Status::Failed => {
                        let _ = write!(
                            out,
                            "<failure message=\"{}\" type=\"{}\">{}</failure>",
                            xml(&error),
                            i.error.as_ref().map_or("failed", |e| e.kind.as_str()),
                            xml(&error)
                        );
                    }
                    Status::Skipped => {
                        let _ = write!(out, "<skipped message=\"{}\"/>", xml(&error));
                    }
                    _ => {}
                }
                let _ = writeln!(
                    out,
                    "<system-out>action={} status={} connection_id={} attempts={}</system-out></testcase>",
                    action_str(i.action),
                    i.status.as_str(),
                    xml(i.connection_id.as_deref().unwrap_or("-")),
                    i.attempts
                );
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

impl Report {
    /// The summary a person reads at the end of `apply`: counts per status
    /// and per sandbox, failed and skipped items with their reasons, the
    /// duration and the rate of writes.
    pub fn to_text(&self, elapsed: Duration) -> String {
        let s = &self.summary;
        let secs = elapsed.as_secs_f64();
        let writes = s.created + s.updated + s.deleted;
        let mut out = String::new();
        let verb = if self.interrupted {
            "Apply interrupted"
        } else if self.dry_run {
            "Dry run finished"
        } else {
            "Apply finished"
        };
        let _ = writeln!(
            out,
            "{verb} in {secs:.1}s: {} created, {} updated, {} deleted, {} unchanged, {} failed, {} skipped ({:.1} writes/s)",
            s.created,
            s.updated,
            s.deleted,
            s.unchanged,
            s.failed,
            s.skipped,
            writes as f64 / secs.max(0.001)
        );
        let mut sandboxes: Vec<&str> = Vec::new();
        for item in &self.items {
            if !sandboxes.contains(&&*item.sandbox) {
                sandboxes.push(&item.sandbox);
            }
        }
        if !sandboxes.is_empty() {
            let width = sandboxes
                .iter()
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
                .max("sandbox".len());
            let _ = write!(out, "\n  {:<width$}", "sandbox");
            for status in Status::ALL {
                let _ = write!(out, "  {:>9}", status.as_str());
            }
            out.push('\n');
            for sandbox in sandboxes {
                let counts = ReportSummary::of(
                    &self
                        .items
                        .iter()
                        .filter(|i| &*i.sandbox == sandbox)
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                let _ = write!(out, "  {:<width$}", terminal(sandbox));
                for status in Status::ALL {
                    let _ = write!(out, "  {:>9}", counts.count(status));
                }
                out.push('\n');
            }
        }
        for (status, title) in [(Status::Failed, "Failed"), (Status::Skipped, "Skipped")] {
            let rows: Vec<&ReportItem> = self
                .items
                .iter()
                .filter(|i| i.status == status && !summarised(i))
                .collect();
            // Items with no plan (their sandbox could not be read, or the
            // API could not be used) share one error, said once above: one
            // line per sandbox here.
            let mut unplanned: Vec<(&str, usize)> = Vec::new();
            for i in self.items.iter().filter(|i| i.status == status) {
                if i.action.is_none() && !never_started(i) && !guarded_item(i) {
                    match unplanned.iter_mut().find(|(s, _)| *s == &*i.sandbox) {
                        Some((_, n)) => *n += 1,
                        None => unplanned.push((&i.sandbox, 1)),
                    }
                }
            }
            let any_guarded = self
                .items
                .iter()
                .any(|i| i.status == status && guarded_item(i));
            if rows.is_empty() && unplanned.is_empty() && !any_guarded {
                continue;
            }
            let _ = writeln!(out, "\n{title}:");
            // Writes a guard held back share their reason: said once.
            let mut guarded: Vec<(&str, usize)> = Vec::new();
            for i in self.items.iter().filter(|i| i.status == status) {
                if let Some(e) = i.error.as_ref().filter(|e| e.kind == ErrorKind::Guard) {
                    match guarded.iter_mut().find(|(m, _)| *m == e.message) {
                        Some((_, n)) => *n += 1,
                        None => guarded.push((&e.message, 1)),
                    }
                }
            }
            for (message, n) in guarded {
                let _ = writeln!(
                    out,
                    "  {n} {}: {}",
                    if n == 1 { "item" } else { "items" },
                    terminal(message)
                );
            }
            for (sandbox, n) in unplanned {
                let _ = writeln!(
                    out,
                    "  {}: {n} {} not planned (see the error above)",
                    terminal(sandbox),
                    if n == 1 { "connection" } else { "connections" }
                );
            }
            for i in rows {
                let _ = writeln!(
                    out,
                    "  {}/{} ({}): {}",
                    terminal(&i.sandbox),
                    terminal(&i.name),
                    action_str(i.action),
                    terminal(
                        &i.error
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )
                );
            }
        }
        let never = self.items.iter().filter(|i| never_started(i)).count();
        if never > 0 {
            let _ = writeln!(
                out,
                "\n{never} {} never started: run `apply` again (the report lists each)",
                if never == 1 { "item" } else { "items" }
            );
        }
        out
    }
}

/// Whether the text summary says an item in a line shared with others
/// rather than on its own.
fn summarised(item: &ReportItem) -> bool {
    item.action.is_none() || never_started(item) || guarded_item(item)
}

/// An item a guard of `apply` held back (the reason is shared).
fn guarded_item(item: &ReportItem) -> bool {
    item.error
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::Guard)
}

/// An item an interrupt kept from starting.
fn never_started(item: &ReportItem) -> bool {
    item.status == Status::Skipped
        && item
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Interrupted)
}

/// The line a person reads when one write is done: `created  prod/sales-eu
/// (id …)`, or `failed   prod/sales-eu (create): why`. Outside text is
/// escaped for the terminal; the hint, when there is one, is not included
/// (see [`ItemError::hint`]).
pub fn change_line(item: &ReportItem) -> String {
    let place = format!("{}/{}", terminal(&item.sandbox), terminal(&item.name));
    match (&item.error, item.status) {
        (Some(error), Status::Failed) => format!(
            "failed   {place} ({}): {}",
            action_str(item.action),
            terminal(&error.to_string())
        ),
        (_, status) => {
            let id = item
                .connection_id
                .as_deref()
                .map(|id| format!(" (id {})", terminal(id)))
                .unwrap_or_default();
            format!("{:<8} {place}{id}", status.as_str())
        }
    }
}

fn action_str(action: Option<Action>) -> &'static str {
    action.map_or("not planned", Action::as_str)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_shows_control_characters() {
        assert_eq!(xml("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;\\u{1}c");
    }

    #[test]
    fn summary_counts_each_status() {
        let item = |status| ReportItem {
            sandbox: "s".into(),
            name: "n".into(),
            action: Some(Action::Create),
            status,
            connection_id: None,
            attempts: 1,
            duration_ms: 1,
            error: None,
        };
        let items: Vec<ReportItem> = Status::ALL
            .iter()
            .map(|s| item(*s))
            .chain([item(Status::Failed)])
            .collect();
        let s = ReportSummary::of(&items);
        assert_eq!(s.total, 7);
        assert_eq!(s.failed, 2);
        for status in Status::ALL {
            assert!(s.count(status) >= 1);
        }
    }

    /// Names and messages from the server carry control characters, pipes
    /// and backticks: no format lets them steer a terminal or break a table,
    /// and items come in the manifest's sandbox order.
    #[test]
    fn hostile_text_is_escaped_in_every_format() {
        let item = |sandbox: &str, name: &str| ReportItem {
            sandbox: sandbox.into(),
            name: name.into(),
            action: Some(Action::Conflict),
            status: Status::Skipped,
            connection_id: Some("id\x1b[31m".into()),
            attempts: 0,
            duration_ms: 0,
            error: Some(Box::new(ItemError::new(
                ErrorKind::Conflict,
                "named `evil\u{7}` | made \r\n by hand",
            ))),
        };
        let epoch = SystemTime::UNIX_EPOCH;
        let report = Report::new(
            epoch,
            epoch,
            false,
            false,
            vec![item("prod", "a\x1b]0;x\u{7}|`b`"), item("stage", "plain")],
        )
        .in_order(&["stage".to_owned(), "prod".to_owned()]);
        assert_eq!(&*report.items[0].sandbox, "stage");
        let text = report.to_text(Duration::from_secs(1));
        let markdown = report.to_markdown();
        let junit = report.to_junit();
        for out in [&text, &markdown, &junit] {
            assert!(
                !out.contains('\x1b') && !out.contains('\u{7}') && !out.contains('\r'),
                "{out:?}"
            );
        }
        for row in markdown.lines().filter(|l| l.contains("conflict")) {
            assert_eq!(row.replace("\\|", "").matches('|').count(), 8, "{row}");
        }
        assert!(
            text.find("stage").unwrap() < text.find("prod").unwrap(),
            "{text}"
        );
    }

    /// A report with a failed item whose error is known field by field, a
    /// bare failure, and a skipped item, in every format.
    #[test]
    fn errors_read_well_in_every_format() {
        let item = |name: &str, status, error: Option<ItemError>| ReportItem {
            sandbox: "prod".into(),
            name: name.into(),
            action: Some(Action::Create),
            status,
            connection_id: None,
            attempts: 2,
            duration_ms: 1500,
            error: error.map(Box::new),
        };
        let api = ItemError {
            http_status: Some(400),
            code: Some("1445-400".into()),
            request_id: Some("req-42".into()),
            ..ItemError::new(ErrorKind::Api, "the connection | name is invalid")
        };
        let items = vec![
            item("sales-eu", Status::Failed, Some(api)),
            item(
                "sales-us",
                Status::Failed,
                Some(ItemError::new(ErrorKind::Network, "connection refused")),
            ),
            item(
                "sales-apac",
                Status::Skipped,
                Some(ItemError::new(
                    ErrorKind::KeyCheck,
                    "not applied: the key check failed",
                )),
            ),
            item("sales-uk", Status::Created, None),
        ];
        let epoch = SystemTime::UNIX_EPOCH;
        let report = Report::new(epoch, epoch + Duration::from_secs(3), false, false, items)
            .with_timings(Timings {
                plan_ms: 120,
                write_ms: 2_540,
                settle_ms: 170,
            });
        insta::assert_snapshot!("report-errors-text", report.to_text(Duration::from_secs(3)));
        insta::assert_snapshot!("report-errors-markdown", report.to_markdown());
        insta::assert_snapshot!("report-errors-junit", report.to_junit());
        insta::assert_snapshot!("report-errors-json", report.to_json());
        let mut written = Vec::new();
        report.write_json(&mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), report.to_json());
    }

    /// An interrupted run with items never started and a sandbox that could
    /// not be read: one line each in the text, every item in the report.
    #[test]
    fn shared_problems_are_said_in_one_line_and_writes_get_their_own() {
        let item = |name: &str, action, status, error: Option<ItemError>| ReportItem {
            sandbox: "prod".into(),
            name: name.into(),
            action,
            status,
            connection_id: Some("id-1".into()),
            attempts: 0,
            duration_ms: 0,
            error: error.map(Box::new),
        };
        let never = || ItemError::new(ErrorKind::Interrupted, "not started");
        let unread = || ItemError::new(ErrorKind::Api, "could not list connections");
        let items = vec![
            item("a", Some(Action::Create), Status::Created, None),
            item("b", Some(Action::Create), Status::Skipped, Some(never())),
            item("c", Some(Action::Update), Status::Skipped, Some(never())),
            item("d", Some(Action::Delete), Status::Skipped, Some(never())),
            item("e", None, Status::Failed, Some(unread())),
            item("f", None, Status::Failed, Some(unread())),
        ];
        let epoch = SystemTime::UNIX_EPOCH;
        let report = Report::new(epoch, epoch, false, true, items);
        let text = report.to_text(Duration::from_secs(1));
        assert!(
            text.contains("3 items never started: run `apply` again"),
            "{text}"
        );
        assert!(!text.contains("not started"), "no line per item: {text}");
        assert!(
            text.contains("prod: 2 connections not planned (see the error above)"),
            "{text}"
        );
        assert!(
            !text.contains("could not list"),
            "said where it happened: {text}"
        );
        assert_eq!(report.items.len(), 6, "the report still lists each");

        let held = ItemError::new(ErrorKind::Guard, "not written: 3 deletes, more than 2");
        let guarded = Report::new(
            epoch,
            epoch,
            false,
            false,
            vec![
                item(
                    "g1",
                    Some(Action::Delete),
                    Status::Skipped,
                    Some(held.clone()),
                ),
                item(
                    "g2",
                    Some(Action::Create),
                    Status::Skipped,
                    Some(held.clone()),
                ),
                item("g3", None, Status::Skipped, Some(held)),
            ],
        );
        let text = guarded.to_text(Duration::from_secs(1));
        assert_eq!(
            text.matches("3 deletes, more than 2").count(),
            1,
            "a guard's reason is said once: {text}"
        );
        assert!(text.contains("3 items: not written"), "{text}");

        assert_eq!(change_line(&report.items[0]), "created  prod/a (id id-1)");
        let failed = ReportItem {
            status: Status::Failed,
            error: Some(Box::new(
                ItemError::new(ErrorKind::Api, "bad\u{1b}[2J name")
                    .with_hint(Some("rename it".into())),
            )),
            ..report.items[0].clone()
        };
        assert_eq!(
            change_line(&failed),
            "failed   prod/a (create): bad\\u{1b}[2J name"
        );
    }

    /// The Markdown of an interrupted run says what is left: work never
    /// started, and connections made that the next run may not see yet.
    #[test]
    fn an_interrupted_report_says_what_was_left() {
        let item = |name: &str, action, status, error: Option<ItemError>| ReportItem {
            sandbox: "prod".into(),
            name: name.into(),
            action: Some(action),
            status,
            connection_id: None,
            attempts: 0,
            duration_ms: 0,
            error: error.map(Box::new),
        };
        let never = || Some(ItemError::new(ErrorKind::Interrupted, "not started"));
        let epoch = SystemTime::UNIX_EPOCH;
        let report = |items| Report::new(epoch, epoch, false, true, items).to_markdown();
        let skipped = "work not started was skipped; run `apply` again to finish.";
        let unlisted = "connection(s) made by this run may not show in listings yet";

        // Interrupted during the writes: both.
        let md = report(vec![
            item("a", Action::Create, Status::Created, None),
            item("b", Action::Create, Status::Skipped, never()),
        ]);
        assert!(md.contains(skipped), "{md}");
        assert!(md.contains(&format!("The 1 {unlisted}")), "{md}");
        // Interrupted while waiting for listings: every write was made.
        let md = report(vec![
            item("a", Action::Create, Status::Created, None),
            item("b", Action::Create, Status::Created, None),
        ]);
        assert!(!md.contains(skipped), "{md}");
        assert!(md.contains(&format!("The 2 {unlisted}")), "{md}");
        // Interrupted before anything was made.
        let md = report(vec![item("a", Action::Update, Status::Skipped, never())]);
        assert!(
            md.contains(&format!("**Interrupted:** {skipped}\n")),
            "{md}"
        );
        assert!(!md.contains(unlisted), "{md}");
    }
}
