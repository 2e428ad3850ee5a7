//! The runner against the in-process emulator: the retry paths a nightly run
//! depends on, driven deterministically.

use std::collections::BTreeMap;
use std::time::Duration;

use atsprov_emulator::{Config, RunningEmulator};
use atsprov_model::plan::{Action, Plan, plan};
use atsprov_model::report::Status;
use atsprov_model::wire::PatchOp;
use atsprov_model::{DesiredConnection, Secret};
use atsprov_runner::{ApplyOptions, Interrupt, ProgressMode, apply, read_live};
use atsprov_transport::{AuthConfig, Client, ClientConfig};

const ORG: &str = "RUNNER0123456789ABCDEF01@AdobeOrg";

fn client(emu: &RunningEmulator, api_key: &str) -> Client {
    let config = ClientConfig::new(
        emu.flow_url().parse().unwrap(),
        ORG,
        api_key,
        AuthConfig::ClientCredentials {
            token_url: emu.token_url().parse().unwrap(),
            client_secret: Secret::new("runner-test-secret"),
            scopes: vec!["openid".into()],
        },
    );
    Client::new(config).unwrap()
}

fn desired(names: &[&str], key: &str) -> Vec<DesiredConnection> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cs = format!("DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey={key}");
            DesiredConnection::new(
                ORG,
                "prod",
                name,
                "Runner tables",
                Secret::new(cs),
                false,
                i,
            )
        })
        .collect()
}

async fn plan_for(client: &Client, want: &[DesiredConnection]) -> Plan {
    let (live, errors) = read_live(client, &["prod".to_owned()]).await;
    assert!(errors.is_empty(), "{errors:?}");
    plan(want, &live, errors, atsprov_model::plan::Options::default())
}

fn options() -> ApplyOptions {
    ApplyOptions {
        concurrency: 4,
        progress: ProgressMode::Hidden,
    }
}

#[tokio::test]
async fn a_stale_etag_is_read_again_rediffed_and_retried() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let ours = client(&emu, "atsprov-runner");
    let first = desired(&["sales"], "b2xk");
    let p = plan_for(&ours, &first).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &first, options(), never.clone()).await;
    assert_eq!(done.items[0].status, Status::Created);

    // Rotate the key and plan; then someone else edits the connection, so the
    // etag in the plan is stale by the time apply runs.
    let rotated = desired(&["sales"], "bmV3");
    let p = plan_for(&ours, &rotated).await;
    assert_eq!(p.changes[0].action, Action::Update);
    let id = p.changes[0].connection_id.clone().unwrap();
    let other = client(&emu, "someone-else");
    let live = other.get_connection("prod", &id).await.unwrap();
    let edited = format!("Edited: {}", live.description.clone().unwrap_or_default());
    other
        .patch_connection("prod", &id, &live.etag, &[PatchOp::Description(edited)])
        .await
        .unwrap();

    let done = apply(&ours, &p, &rotated, options(), never).await;
    let item = &done.items[0];
    assert_eq!(item.status, Status::Updated, "{item:?}");
    assert_eq!(item.attempts, 2, "one 412, then a fresh etag");
    let p = plan_for(&ours, &rotated).await;
    assert_eq!(
        p.changes[0].action,
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
    let done = apply(&ours, &p, &want, options(), never).await;
    assert!(
        done.items.iter().all(|i| i.status == Status::Created),
        "{:?}",
        done.items
    );
    assert!(
        done.items.iter().all(|i| i.attempts == 1),
        "found by looking, not created again"
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

#[tokio::test]
async fn the_bound_shrinks_when_the_api_pushes_back() {
    let emu = atsprov_emulator::start(Config {
        rate_limit: Some(20),
        latency: Duration::from_millis(5),
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu, "atsprov-runner");
    let names: Vec<String> = (0..60).map(|i| format!("conn-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let want = desired(&refs, "a2V5");
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(
        &ours,
        &p,
        &want,
        ApplyOptions {
            concurrency: 16,
            progress: ProgressMode::Hidden,
        },
        never,
    )
    .await;
    assert!(done.items.iter().all(|i| i.status == Status::Created));
    let lowest = done.lowest_concurrency.expect("429s lowered the bound");
    assert!(lowest < 16, "{lowest}");
    emu.shutdown().await;
}
