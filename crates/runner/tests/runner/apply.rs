//! The runner against the in-process emulator: the retry paths a nightly run
//! depends on, driven deterministically, and the exactly-once invariant:
//! every declared connection and every orphan appears once in the outcome,
//! whatever failed or was interrupted.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use atsprov_emulator::{Config, RunningEmulator};
use atsprov_model::Secret;
use atsprov_model::manifest::{self, Manifest, Overrides};
use atsprov_model::plan::{Action, Plan};
use atsprov_model::report::{ErrorKind, Report, ReportItem, Status};
use atsprov_model::wire::PatchOp;
use atsprov_runner::{
    ApplyOptions, ApplyResult, ApplyRun, Interrupt, Observer, ProgressMode, Unobserved, apply,
};
use atsprov_transport::Client;
use tokio::sync::watch;

use crate::common::{ORG, client, desired, plan_for, stats};

const KEY: &str = "a2V5LW9uZS0wMTIzNDU2Nzg5LW1hdGVyaWFs";
const OTHER_KEY: &str = "a2V5LXR3by0wMTIzNDU2Nzg5LW1hdGVyaWFs";

fn options() -> ApplyOptions {
    ApplyOptions {
        concurrency: 4,
        progress: ProgressMode::Hidden,
        lookup_patience: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn a_stale_etag_is_read_again_rediffed_and_retried() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let ours = client(&emu, "atsprov-runner");
    let first = desired(&["sales"], "b2xk");
    let p = plan_for(&ours, &first).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &first, options(), &Unobserved, never.clone()).await;
    assert_eq!(done.items[0].status, Status::Created);

    // Rotate the key and plan; then someone else edits the connection, so the
    // etag in the plan is stale by the time apply runs.
    let rotated = desired(&["sales"], "bmV3");
    let p = plan_for(&ours, &rotated).await;
    assert_eq!(p.plan.changes[0].action, Action::Update);
    let id = p.plan.changes[0].connection_id.clone().unwrap();
    let other = client(&emu, "someone-else");
    let live = other.get_connection("prod", &id).await.unwrap();
    let edited = format!("Edited: {}", live.description.clone().unwrap_or_default());
    other
        .patch_connection("prod", &id, &live.etag, &[PatchOp::Description(edited)])
        .await
        .unwrap();

    let done = apply(&ours, &p, &rotated, options(), &Unobserved, never).await;
    let item = &done.items[0];
    assert_eq!(item.status, Status::Updated, "{item:?}");
    assert_eq!(
        item.attempts, 3,
        "every HTTP attempt: the 412, the re-read, the patch with a fresh etag"
    );
    let p = plan_for(&ours, &rotated).await;
    assert_eq!(
        p.plan.changes[0].action,
        Action::NoOp,
        "the rotated key is in place"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn ambiguous_creates_are_looked_up_not_duplicated() {
    // Every write is carried out and then the connection is dropped unanswered.
    let emu = atsprov_emulator::start(Config {
        ambiguous_rate: 1.0,
        seed: Some(1),
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu, "atsprov-runner");
    let want = desired(&["a", "b", "c", "d", "e"], "a2V5");
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(), &Unobserved, never).await;
    assert!(
        done.items.iter().all(|i| i.status == Status::Created),
        "{:?}",
        done.items
    );
    assert!(
        done.items.iter().all(|i| i.attempts == 2),
        "found by looking (the create, then one listing by name), not created again: {:?}",
        done.items
    );

    let live = ours.list_connections("prod").await.unwrap();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for c in &live {
        *names.entry(c.name.clone()).or_default() += 1;
    }
    assert_eq!(names.len(), 5);
    assert!(names.values().all(|n| *n == 1), "no duplicates: {names:?}");
    let ids: Vec<Option<String>> = done.items.iter().map(|i| i.connection_id.clone()).collect();
    assert!(
        ids.iter().all(Option::is_some),
        "the found ids are reported"
    );
    emu.shutdown().await;
}

/// `n` new connections applied at concurrency 16 against an emulator set up
/// with `config`.
async fn apply_many_under(config: Config, n: usize) -> atsprov_runner::ApplyOutcome {
    let emu = atsprov_emulator::start(config).await.unwrap();
    let ours = client(&emu, "atsprov-runner");
    let names: Vec<String> = (0..n).map(|i| format!("conn-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let want = desired(&refs, "a2V5");
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let options = ApplyOptions {
        concurrency: 16,
        progress: ProgressMode::Hidden,
        lookup_patience: Duration::from_millis(300),
    };
    let done = apply(&ours, &p, &want, options, &Unobserved, never).await;
    emu.shutdown().await;
    done
}

#[tokio::test]
async fn the_bound_shrinks_when_the_api_pushes_back() {
    let config = Config {
        rate_limit: Some(20),
        latency: Duration::from_millis(5),
        ..Config::default()
    };
    let done = apply_many_under(config, 60).await;
    assert!(done.items.iter().all(|i| i.status == Status::Created));
    let lowest = done.lowest_concurrency.expect("429s lowered the bound");
    assert!(lowest < 16, "{lowest}");
}

/// A rate limit far below the concurrency slows the run; no call fails for
/// it (a 429 is "come back later": the call was not carried out).
#[tokio::test]
async fn a_tight_rate_limit_slows_the_run_and_fails_nothing() {
    let config = Config {
        rate_limit: Some(5),
        ..Config::default()
    };
    let done = apply_many_under(config, 40).await;
    let failed: Vec<_> = done
        .items
        .iter()
        .filter(|i| i.status != Status::Created)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

// ---- whole runs, and the exactly-once invariant ----

/// An account of a test manifest: its name, key, and whether its key is
/// checked against the emulator's Table endpoint.
struct Acct {
    name: String,
    key: &'static str,
    table: bool,
}

fn accts(prefix: &str, n: usize) -> Vec<Acct> {
    (0..n)
        .map(|i| Acct {
            name: format!("{prefix}-{i:02}"),
            key: KEY,
            table: false,
        })
        .collect()
}

fn account_name(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A manifest for the emulator, loaded as the binary loads it.
fn manifest(dir: &Path, emu: &RunningEmulator, sandboxes: &[&str], accounts: &[Acct]) -> Manifest {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "[platform]\nendpoint = \"{}\"\norg_id = \"{ORG}\"\napi_key = \"atsprov-runner\"\n\n\
         [auth]\ntoken_url = \"{}\"\nclient_secret = \"runner-test-secret\"\n\n\
         [defaults]\nsandboxes = [{}]\ndescription = \"Runner tables\"\n",
        emu.flow_url(),
        emu.token_url(),
        list(sandboxes)
    );
    for a in accounts {
        let account = account_name(&a.name);
        text.push_str(&format!(
            "\n[[accounts]]\nname = \"{}\"\naccount_name = \"{account}\"\naccount_key = \"{}\"\n",
            a.name, a.key
        ));
        if a.table {
            text.push_str(&format!(
                "table_endpoint = \"{}\"\n",
                emu.table_url(&account)
            ));
        }
    }
    let path = dir.join("manifest.toml");
    std::fs::write(&path, text).unwrap();
    manifest::load(&path, &Overrides::default()).unwrap()
}

/// Runs a whole `apply` of a manifest, as the binary does.
async fn run_apply(
    client: &Client,
    manifest: &Manifest,
    prune: bool,
    verify: bool,
    observer: &dyn Observer,
    interrupt: Interrupt,
) -> ApplyResult {
    let patience = Duration::from_millis(300);
    run_apply_patiently(
        client, manifest, prune, verify, patience, observer, interrupt,
    )
    .await
}

/// [`run_apply`] with this patience for looks and the wait for listings.
async fn run_apply_patiently(
    client: &Client,
    manifest: &Manifest,
    prune: bool,
    verify: bool,
    patience: Duration,
    observer: &dyn Observer,
    interrupt: Interrupt,
) -> ApplyResult {
    let desired = manifest.desired();
    let sandboxes = manifest.sandboxes();
    ApplyRun {
        client,
        manifest,
        desired: &desired,
        sandboxes: &sandboxes,
        prune,
        owner: None,
        targets: &[],
        verify,
        dry_run: false,
        options: ApplyOptions {
            concurrency: 4,
            progress: ProgressMode::Hidden,
            lookup_patience: patience,
        },
        max_deletes: manifest.max_deletes,
        saved: None,
        // In-process runs share no lock directory; the binary's e2e tests cover the lock.
        lock_wait: None,
        lock_note: "",
        fail_fast: false,
    }
    .run(observer, interrupt)
    .await
}

/// Asserts that the report holds each declared connection of `manifest` and
/// each of `orphans` (sandbox, name) exactly once, and nothing else.
fn assert_exactly_once(report: &Report, manifest: &Manifest, orphans: &[(&str, &str)]) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for item in &report.items {
        *seen
            .entry((item.sandbox.to_string(), item.name.to_string()))
            .or_default() += 1;
    }
    let mut want: BTreeMap<(String, String), usize> = manifest
        .desired()
        .iter()
        .map(|d| ((d.sandbox.to_string(), d.name.to_string()), 1))
        .collect();
    for (sandbox, name) in orphans {
        want.insert(((*sandbox).to_owned(), (*name).to_owned()), 1);
    }
    assert_eq!(seen, want, "every item exactly once: {:#?}", report.items);
    assert_eq!(report.summary.total, report.items.len());
}

fn kinds(items: &[ReportItem], status: Status) -> Vec<ErrorKind> {
    items
        .iter()
        .filter(|i| i.status == status)
        .map(|i| i.error.as_ref().expect("a reason").kind)
        .collect()
}

#[tokio::test]
async fn under_faults_every_item_and_orphan_appears_once() {
    let emu = atsprov_emulator::start(Config {
        fail_rate: 0.3,
        ambiguous_rate: 0.2,
        seed: Some(7),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let (_tx, never) = Interrupt::channel();
    // A first run makes `old-*`; a second manifest drops them (orphans) and
    // declares new ones, all under faults.
    let first = manifest(dir.path(), &emu, &["dev", "prod"], &accts("old", 2));
    let mut result = run_apply(&ours, &first, false, false, &Unobserved, never.clone()).await;
    for _ in 0..5 {
        if result.report.summary.failed == 0 {
            break;
        }
        result = run_apply(&ours, &first, false, false, &Unobserved, never.clone()).await;
    }
    assert_eq!(
        result.report.summary.failed, 0,
        "{:#?}",
        result.report.items
    );

    let second = manifest(dir.path(), &emu, &["dev", "prod"], &accts("new", 12));
    let orphans = [
        ("dev", "old-00"),
        ("dev", "old-01"),
        ("prod", "old-00"),
        ("prod", "old-01"),
    ];
    let result = run_apply(&ours, &second, false, false, &Unobserved, never).await;
    assert_exactly_once(&result.report, &second, &orphans);
    assert!(!result.report.interrupted);
    assert_eq!(
        kinds(&result.report.items, Status::Skipped),
        vec![ErrorKind::Orphan; 4]
    );
    for item in result
        .report
        .items
        .iter()
        .filter(|i| i.status == Status::Failed)
    {
        let error = item.error.as_ref().unwrap();
        assert!(
            matches!(error.kind, ErrorKind::Api | ErrorKind::Ambiguous),
            "{item:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn the_report_times_the_plan_the_writes_and_the_wait_for_listings() {
    // Every answer takes 30 ms: each phase that calls the API takes at least that.
    let latency = Duration::from_millis(30);
    let emu = atsprov_emulator::start(Config {
        latency,
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let (_tx, never) = Interrupt::channel();
    let m = manifest(dir.path(), &emu, &["prod"], &accts("timed", 3));
    let result = run_apply(&ours, &m, false, false, &Unobserved, never.clone()).await;
    assert_eq!(result.report.summary.created, 3);
    let t = result.report.timings;
    assert_eq!(t, result.timings);
    let ms = u64::try_from(latency.as_millis()).unwrap();
    assert!(t.plan_ms >= 2 * ms, "a token, then a listing: {t:?}");
    assert!(t.write_ms >= ms, "{t:?}");
    assert!(t.settle_ms >= ms, "one listing by id: {t:?}");
    // Nothing to write: no write phase.
    let again = run_apply(&ours, &m, false, false, &Unobserved, never).await;
    assert_eq!(again.report.summary.unchanged, 3);
    assert!(
        again.report.timings.plan_ms >= ms,
        "{:?}",
        again.report.timings
    );
    assert_eq!(again.report.timings.write_ms, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_interrupt_before_the_plan_skips_everything_and_writes_nothing() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["dev", "prod"], &accts("acct", 3));
    let (presses, interrupt) = Interrupt::channel();
    presses.send_modify(|n| *n += 1);
    let result = run_apply(&ours, &m, false, false, &Unobserved, interrupt).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.report.interrupted);
    assert_eq!(
        kinds(&result.report.items, Status::Skipped),
        vec![ErrorKind::Interrupted; 6]
    );
    assert!(ours.list_connections("dev").await.unwrap().is_empty());
    emu.shutdown().await;
}

/// Presses Ctrl-C when the first item is done.
struct PressAfterFirst(watch::Sender<u32>);

impl Observer for PressAfterFirst {
    fn item_done(&self, _item: &ReportItem) {
        self.0.send_if_modified(|n| {
            let first = *n == 0;
            *n = 1;
            first
        });
    }
}

#[tokio::test]
async fn an_interrupt_during_the_run_finishes_in_flight_work_and_skips_the_rest() {
    let emu = atsprov_emulator::start(Config {
        latency: Duration::from_millis(2),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["prod"], &accts("acct", 40));
    let (presses, interrupt) = Interrupt::channel();
    let observer = PressAfterFirst(presses);
    let result = run_apply(&ours, &m, false, false, &observer, interrupt).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.report.interrupted);
    let s = result.report.summary;
    // Work in flight when the interrupt came was finished; nothing new started.
    assert!(s.created >= 1 && s.skipped >= 1, "{s:?}");
    assert_eq!(s.created + s.skipped, 40, "{s:?}");
    assert!(
        kinds(&result.report.items, Status::Skipped)
            .iter()
            .all(|k| *k == ErrorKind::Interrupted)
    );
    let live = ours.list_connections("prod").await.unwrap();
    assert_eq!(
        live.len(),
        s.created,
        "nothing was written after the interrupt"
    );
    emu.shutdown().await;
}

/// An emulator whose listings show new connections only after an hour, so
/// a run's wait for them ends by its patience or an interrupt.
async fn lagging_emulator(latency: Duration) -> RunningEmulator {
    atsprov_emulator::start(Config {
        list_lag: Duration::from_secs(3600),
        latency,
        ..Config::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_interrupt_during_the_wait_for_listings_ends_it_and_the_run_is_interrupted() {
    // New connections show in listings only after an hour, and the run
    // would wait a minute for them: only the interrupt ends the wait early.
    // Every answer takes 20 ms, so the wait's first count takes that long.
    let emu = lagging_emulator(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["prod"], &accts("lagged", 2));
    let (presses, interrupt) = Interrupt::channel();
    let press = async {
        // A count by id has been answered: the writes are done and the
        // run is waiting for its connections to show.
        while stats(&emu).await["lists_by_id"] == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        presses.send_modify(|n| *n += 1);
    };
    let patience = Duration::from_secs(60);
    let run = run_apply_patiently(&ours, &m, false, false, patience, &Unobserved, interrupt);
    let (result, ()) = tokio::join!(run, press);
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.report.interrupted, "{:#?}", result.report);
    // The writes were done: their items keep what happened.
    for item in &result.report.items {
        assert_eq!(item.action, Some(Action::Create), "{item:?}");
        assert_eq!(item.status, Status::Created, "{item:?}");
        assert!(item.connection_id.is_some(), "{item:?}");
    }
    assert_eq!(result.unlisted, 2, "neither showed in listings");
    let t = result.report.timings;
    assert!(
        t.settle_ms >= 20 && t.settle_ms < 60_000,
        "the wait counts until the interrupt: {t:?}"
    );
    assert_eq!(stats(&emu).await["by_route"]["create"], 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_wait_for_listings_that_runs_out_of_patience_is_no_interrupt() {
    let emu = lagging_emulator(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["prod"], &accts("lagged", 3));
    let (_tx, never) = Interrupt::channel();
    let result = run_apply(&ours, &m, false, false, &Unobserved, never).await;
    assert!(!result.report.interrupted);
    assert_eq!(result.report.summary.created, 3);
    assert_eq!(result.unlisted, 3, "none showed within the patience");
    let t = result.report.timings;
    assert!(t.settle_ms >= 300, "the whole patience was waited: {t:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_interrupt_during_the_last_write_skips_the_wait_and_the_run_is_interrupted() {
    let emu = lagging_emulator(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["prod"], &accts("last", 1));
    let (presses, interrupt) = Interrupt::channel();
    // The one write is done when the interrupt comes: nothing is left to
    // start, but the wait for listings is not begun.
    let observer = PressAfterFirst(presses);
    let patience = Duration::from_secs(60);
    let result = run_apply_patiently(&ours, &m, false, false, patience, &observer, interrupt).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.report.interrupted, "{:#?}", result.report);
    assert_eq!(result.report.summary.created, 1);
    assert_eq!(result.unlisted, 1, "not seen in listings");
    assert_eq!(result.report.timings.settle_ms, 0, "no wait");
    assert_eq!(
        stats(&emu).await["lists_by_id"],
        0,
        "no count after the interrupt"
    );
    emu.shutdown().await;
}

/// Presses Ctrl-C while the question waits, and never answers it.
struct CtrlCAtTheQuestion {
    presses: watch::Sender<u32>,
    answer: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<bool>>>,
}

impl Observer for CtrlCAtTheQuestion {
    fn confirm(&self, _plan: &Plan) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Kept, never sent: the question is still waiting.
        *self.answer.lock().unwrap() = Some(tx);
        self.presses.send_modify(|n| *n += 1);
        rx
    }
}

#[tokio::test]
async fn an_interrupt_at_the_question_keeps_the_plan_in_the_report() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let mut accounts = accts("acct", 4);
    let m = manifest(dir.path(), &emu, &["prod"], &accounts);
    let (_tx, never) = Interrupt::channel();
    let first = run_apply(&ours, &m, false, false, &Unobserved, never).await;
    assert_eq!(first.report.summary.created, 4);
    // Two keys rotated: two updates, two no-ops.
    accounts[0].key = OTHER_KEY;
    accounts[2].key = OTHER_KEY;
    let m = manifest(dir.path(), &emu, &["prod"], &accounts);
    let before = stats(&emu).await["writes"].clone();
    let (presses, interrupt) = Interrupt::channel();
    let observer = CtrlCAtTheQuestion {
        presses,
        answer: std::sync::Mutex::new(None),
    };
    let result = run_apply(&ours, &m, false, false, &observer, interrupt).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.report.interrupted);
    assert!(result.guard.is_none(), "{:?}", result.guard);
    assert_eq!(stats(&emu).await["writes"], before, "nothing was written");
    let mut seen: Vec<(String, Option<Action>, Status, Option<ErrorKind>)> = result
        .report
        .items
        .iter()
        .map(|i| {
            (
                i.name.to_string(),
                i.action,
                i.status,
                i.error.as_ref().map(|e| e.kind),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let interrupted = Some(ErrorKind::Interrupted);
    assert_eq!(
        seen,
        [
            (
                "acct-00".into(),
                Some(Action::Update),
                Status::Skipped,
                interrupted
            ),
            (
                "acct-01".into(),
                Some(Action::NoOp),
                Status::Unchanged,
                None
            ),
            (
                "acct-02".into(),
                Some(Action::Update),
                Status::Skipped,
                interrupted
            ),
            (
                "acct-03".into(),
                Some(Action::NoOp),
                Status::Unchanged,
                None
            ),
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_failed_key_check_holds_back_that_accounts_writes_only() {
    let good = "goodacct";
    let emu = atsprov_emulator::start(Config {
        table_accounts: vec![
            (good.to_owned(), Secret::new(KEY)),
            ("badacct".to_owned(), Secret::new(KEY)),
        ],
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let accounts = [
        Acct {
            name: "good-acct".into(),
            key: KEY,
            table: true,
        },
        Acct {
            name: "bad-acct".into(),
            key: OTHER_KEY,
            table: true,
        },
    ];
    let m = manifest(dir.path(), &emu, &["dev", "prod"], &accounts);
    let (_tx, never) = Interrupt::channel();
    let result = run_apply(&ours, &m, false, true, &Unobserved, never).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert!(result.keys_failed);
    for item in &result.report.items {
        if &*item.name == "good-acct" {
            assert_eq!(item.status, Status::Created, "{item:?}");
        } else {
            assert_eq!(item.status, Status::Skipped, "{item:?}");
            let error = item.error.as_ref().unwrap();
            assert_eq!(error.kind, ErrorKind::KeyCheck, "{item:?}");
            assert_eq!(error.http_status, Some(403), "{item:?}");
            assert_eq!(item.action, Some(Action::Create));
        }
    }
    let live: Vec<String> = ours
        .list_connections("dev")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(live, ["good-acct"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_sandbox_fails_its_items_with_the_apis_answer() {
    let emu = atsprov_emulator::start(Config {
        sandboxes: Some(vec!["dev".to_owned()]),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["dev", "stage"], &accts("acct", 2));
    let (_tx, never) = Interrupt::channel();
    let result = run_apply(&ours, &m, false, false, &Unobserved, never).await;
    assert_exactly_once(&result.report, &m, &[]);
    assert_eq!(result.report.summary.created, 2);
    for item in result
        .report
        .items
        .iter()
        .filter(|i| &*i.sandbox == "stage")
    {
        assert_eq!(item.status, Status::Failed);
        assert_eq!(item.action, None);
        let error = item.error.as_ref().unwrap();
        assert_eq!(error.kind, ErrorKind::Api, "{error:?}");
        assert_eq!(error.http_status, Some(404), "{error:?}");
        assert!(error.code.is_some(), "Adobe's code is kept: {error:?}");
        assert!(
            error.message.starts_with("could not list connections"),
            "{error:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn refused_credentials_fail_every_item_once_with_kind_auth() {
    let emu = atsprov_emulator::start(Config {
        client_credentials: Some(("atsprov-runner".into(), "another-secret".into())),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = client(&emu, "atsprov-runner");
    let m = manifest(dir.path(), &emu, &["dev", "prod"], &accts("acct", 2));
    let (_tx, never) = Interrupt::channel();
    let result = run_apply(&ours, &m, false, false, &Unobserved, never).await;
    assert_exactly_once(&result.report, &m, &[]);
    let stopped = result.stopped.expect("no plan could be made");
    assert_eq!(stopped.kind, ErrorKind::Auth, "{stopped:?}");
    assert_eq!(
        kinds(&result.report.items, Status::Failed),
        vec![ErrorKind::Auth; 4]
    );
}
