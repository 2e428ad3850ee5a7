//! The runner against the emulator in the real service's stricter modes:
//! listings that lag writes, writes whose answer is lost, and overload 500s.
//! Never two connections of one declared name left standing.

use std::collections::BTreeMap;
use std::time::Duration;

use atsprov_emulator::{Config, RunningEmulator};
use atsprov_model::manifest::Auth;
use atsprov_model::plan::{Action, Options};
use atsprov_model::report::{ErrorKind, Status};
use atsprov_model::{DesiredConnection, Secret};
use atsprov_runner::{
    ApplyOptions, Interrupt, Planned, ProgressMode, Unobserved, apply, make_plan,
};
use atsprov_transport::{Client, ClientConfig};

const ORG: &str = "REALAPI0123456789ABCDEF0@AdobeOrg";

fn client(emu: &RunningEmulator) -> Client {
    let config = ClientConfig::new(
        emu.flow_url().parse().unwrap(),
        ORG,
        "atsprov-realapi",
        Auth::ClientCredentials {
            token_url: emu.token_url().parse().unwrap(),
            client_secret: Secret::new("realapi-test-secret"),
            scopes: vec!["openid".into()],
        },
    );
    Client::new(config).unwrap()
}

fn desired(n: usize) -> Vec<DesiredConnection> {
    (0..n)
        .map(|i| {
            let cs = format!("DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey=a2V5");
            DesiredConnection::new(
                ORG,
                "prod",
                &format!("conn-{i:03}"),
                "Real API tables",
                Secret::new(cs),
                false,
                i,
            )
        })
        .collect()
}

async fn plan_for(client: &Client, want: &[DesiredConnection]) -> Planned {
    let sandboxes = ["prod".to_owned()];
    let options = Options {
        sandboxes: &sandboxes,
        ..Options::default()
    };
    let planned = make_plan(client, want, options).await.unwrap();
    assert!(planned.plan.errors.is_empty(), "{:?}", planned.plan.errors);
    planned
}

fn options(concurrency: usize, patience_ms: u64) -> ApplyOptions {
    ApplyOptions {
        concurrency,
        progress: ProgressMode::Hidden,
        lookup_patience: Duration::from_millis(patience_ms),
    }
}

/// name -> how many connections of that name `prod` lists.
async fn counts(client: &Client) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for c in client.list_connections("prod").await.unwrap() {
        *names.entry(c.name).or_default() += 1;
    }
    names
}

fn one_each(want: &[DesiredConnection]) -> BTreeMap<String, usize> {
    want.iter().map(|d| (d.name.clone(), 1)).collect()
}

#[tokio::test]
async fn a_lost_create_under_listing_lag_is_found_by_a_patient_look() {
    // Every write is carried out and its answer dropped; listings show a new
    // connection only 1.5 s after it was made.
    let emu = atsprov_emulator::start(Config {
        ambiguous_rate: 1.0,
        list_lag: Duration::from_millis(1500),
        seed: Some(3),
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu);
    let want = desired(5);
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(5, 10_000), &Unobserved, never).await;
    for item in &done.items {
        assert_eq!(item.status, Status::Created, "{item:?}");
        assert_eq!(
            item.attempts, 1,
            "found by looking, not created again: {item:?}"
        );
        assert!(item.connection_id.is_some(), "{item:?}");
    }
    // The run waited until its connections show in listings: a plan made
    // right now sees every one of them, once.
    assert_eq!(counts(&ours).await, one_each(&want));
    let again = plan_for(&ours, &want).await;
    assert!(
        again.plan.changes.iter().all(|c| c.action == Action::NoOp),
        "{:#?}",
        again.plan.changes
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_lost_create_not_seen_in_time_fails_and_is_not_made_twice() {
    let lag = Duration::from_millis(1500);
    let emu = atsprov_emulator::start(Config {
        ambiguous_rate: 1.0,
        list_lag: lag,
        seed: Some(4),
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu);
    let want = desired(3);
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    // Less patience than the listing's lag: the look cannot see the write.
    let done = apply(&ours, &p, &want, options(3, 100), &Unobserved, never).await;
    for item in &done.items {
        assert_eq!(item.status, Status::Failed, "{item:?}");
        assert_eq!(item.attempts, 1, "never created blindly again: {item:?}");
        let error = item.error.as_ref().unwrap();
        assert_eq!(error.kind, ErrorKind::Ambiguous, "{error:?}");
        assert!(
            error.message.contains("the next `apply` finds it"),
            "{}",
            error.message
        );
    }
    // Once the listing caught up, each was made exactly once and the next
    // plan has nothing to do.
    tokio::time::sleep(lag + Duration::from_millis(200)).await;
    assert_eq!(counts(&ours).await, one_each(&want));
    let again = plan_for(&ours, &want).await;
    assert!(
        again.plan.changes.iter().all(|c| c.action == Action::NoOp),
        "{:#?}",
        again.plan.changes
    );
    emu.shutdown().await;
}

async fn stats(emu: &RunningEmulator) -> serde_json::Value {
    let text = reqwest::get(emu.stats_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn overload_500s_on_creates_are_resolved_by_looking_and_leave_no_duplicate() {
    // Above 100 calls a second the emulator answers `1102-500` (no
    // Retry-After): a create that got one is ambiguous. With 20 ms a call,
    // 16 workers ask for far more than that.
    let emu = atsprov_emulator::start(Config {
        rate_limit: Some(100),
        latency: Duration::from_millis(20),
        overload_500: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu);
    let want = desired(300);
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(16, 300), &Unobserved, never).await;
    let failed: Vec<_> = done
        .items
        .iter()
        .filter(|i| i.status != Status::Created)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed (lowest concurrency {:?}, stats {}): {:#?}",
        failed.len(),
        done.lowest_concurrency,
        stats(&emu).await,
        failed.first()
    );
    assert_eq!(counts(&ours).await, one_each(&want));
    let stats = stats(&emu).await;
    let overloaded = stats["overloaded"].as_u64().unwrap();
    let creates = stats["by_route"]["create"].as_u64().unwrap();
    assert!(overloaded > 0, "the run met overload: {stats}");
    assert!(
        done.lowest_concurrency.is_some_and(|c| c < 16),
        "the limiter backed off: {:?} ({overloaded} overload 500s over {creates} create calls)",
        done.lowest_concurrency
    );
    emu.shutdown().await;
}
