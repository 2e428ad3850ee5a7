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
use atsprov_runner::{ApplyOptions, Interrupt, Planned, ProgressMode, Unobserved, apply};
use atsprov_transport::{Client, ClientConfig};

use crate::common::{self, ORG, plan_for, stats};

fn client(emu: &RunningEmulator) -> Client {
    common::client(emu, "atsprov-realapi")
}

fn desired(n: usize) -> Vec<DesiredConnection> {
    let names: Vec<String> = (0..n).map(|i| format!("conn-{i:03}")).collect();
    common::desired(&names, "a2V5")
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
    want.iter().map(|d| (d.name.to_string(), 1)).collect()
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
        assert!(
            item.attempts >= 2,
            "every HTTP attempt counts: the create and the looks: {item:?}"
        );
        assert!(item.connection_id.is_some(), "{item:?}");
    }
    assert_eq!(
        stats(&emu).await["by_route"]["create"],
        5,
        "found by looking, not created again"
    );
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
    assert_eq!(
        stats(&emu).await["by_route"]["create"],
        3,
        "never created blindly again"
    );
    for item in &done.items {
        assert_eq!(item.status, Status::Failed, "{item:?}");
        assert!(
            item.attempts >= 2,
            "every HTTP attempt counts: the create and the looks: {item:?}"
        );
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

#[tokio::test]
async fn under_listing_lag_the_wait_ends_when_every_new_connection_shows() {
    // Listings show a new connection 800 ms after it was made: the run
    // waits (listings by id, again for those not seen) until all show.
    let emu = atsprov_emulator::start(Config {
        list_lag: Duration::from_millis(800),
        ..Config::default()
    })
    .await
    .unwrap();
    let ours = client(&emu);
    let want = desired(250);
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(16, 10_000), &Unobserved, never).await;
    assert!(done.items.iter().all(|i| i.status == Status::Created));
    let first = stats(&emu).await;
    assert!(
        first["lists_by_id"].as_u64().unwrap() >= 3,
        "waited with listings by id: {first}"
    );
    // Right after it, every one shows: a second apply has nothing to create.
    let again = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let second = apply(
        &ours,
        &again,
        &want,
        options(16, 10_000),
        &Unobserved,
        never,
    )
    .await;
    assert!(
        second.items.iter().all(|i| i.status == Status::Unchanged),
        "{:#?}",
        second.items.iter().find(|i| i.status != Status::Unchanged)
    );
    assert_eq!(stats(&emu).await["by_route"]["create"], 250);
    assert_eq!(counts(&ours).await, one_each(&want));
    emu.shutdown().await;
}

#[tokio::test]
async fn the_wait_after_n_creates_lists_by_id_in_batches_not_whole_sandboxes() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let ours = client(&emu);
    let want = desired(250);
    let p = plan_for(&ours, &want).await;
    let before = stats(&emu).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(16, 10_000), &Unobserved, never).await;
    assert!(done.items.iter().all(|i| i.status == Status::Created));
    let after = stats(&emu).await;
    // No lag: one round, ceil(250 / 100) listings, each filtered by id.
    assert_eq!(after["lists_by_id"], 3, "{after}");
    let lists = |s: &serde_json::Value| s["by_route"]["list"].as_u64().unwrap();
    assert_eq!(
        lists(&after) - lists(&before),
        3,
        "no whole listing: {after}"
    );
    emu.shutdown().await;
}

/// Stores a connection as the AEP UI or another tool would have made it.
async fn seed(emu: &RunningEmulator, body: serde_json::Value) -> String {
    let url = format!("http://{}/_emulator/connections", emu.addr());
    let answer = reqwest::Client::new()
        .post(url)
        .header("x-gw-ims-org-id", ORG)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let v: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The item of `name`, and its error.
fn failed<'a>(
    items: &'a [atsprov_model::report::ReportItem],
    name: &str,
) -> &'a atsprov_model::report::ItemError {
    let item = items.iter().find(|i| &*i.name == name).unwrap();
    assert_eq!(item.status, Status::Failed, "{item:?}");
    assert_eq!(
        item.attempts, 1,
        "refusals are not retried, nor looked at again: {item:?}"
    );
    item.error.as_ref().unwrap()
}

#[tokio::test]
async fn refusals_of_a_connection_in_a_state_get_their_code_and_what_to_do() {
    let emu = atsprov_emulator::start(Config::default()).await.unwrap();
    let ours = client(&emu);
    let want = desired(3);
    // Made by atsprov earlier (its marker, an older fingerprint), now in
    // states that refuse writes. The plan was made before the deletes
    // started: the listing said `enabled`.
    let older = desired(3)
        .into_iter()
        .map(|mut d| {
            d.fingerprint = desired(4)[3].fingerprint.clone();
            d.marked_description()
        })
        .collect::<Vec<_>>();
    for (i, state) in ["failed", "delete-finalizing"].iter().enumerate() {
        seed(
            &emu,
            serde_json::json!({"sandbox": "prod", "name": &*want[i].name, "description": older[i], "state": state}),
        )
        .await;
    }
    seed(
        &emu,
        serde_json::json!({"sandbox": "prod", "name": "retired", "description": older[2], "state": "delete-finalizing"}),
    )
    .await;
    let mut live = BTreeMap::new();
    let mut listed = ours.list_connections("prod").await.unwrap();
    for c in &mut listed {
        c.state = Some("enabled".into());
    }
    live.insert("prod".to_owned(), listed);
    let sandboxes = ["prod".to_owned()];
    let plan = atsprov_model::plan::plan(
        &want[..2],
        &live,
        Vec::new(),
        Options {
            sandboxes: &sandboxes,
            prune: true,
            ..Options::default()
        },
    );
    let actions: Vec<(&str, Action)> = plan.changes.iter().map(|c| (&*c.name, c.action)).collect();
    assert_eq!(
        actions,
        [
            ("conn-000", Action::Update),
            ("conn-001", Action::Update),
            ("retired", Action::Delete)
        ]
    );
    let planned = Planned {
        plan,
        ..Planned::default()
    };
    let (_tx, never) = Interrupt::channel();
    let done = apply(
        &ours,
        &planned,
        &want[..2],
        options(3, 100),
        &Unobserved,
        never,
    )
    .await;

    let e = failed(&done.items, "conn-000");
    assert!(e.code.as_deref().unwrap().contains("1416"), "{e:?}");
    assert!(
        e.hint
            .as_deref()
            .is_some_and(|h| h.contains("check its state in the AEP UI")),
        "what to do is the hint: {e:?}"
    );
    let e = failed(&done.items, "conn-001");
    assert!(e.code.as_deref().unwrap().contains("1457"), "{e:?}");
    assert!(
        e.hint
            .as_deref()
            .is_some_and(|h| h.contains("is being deleted")),
        "what to do is the hint: {e:?}"
    );
    let e = failed(&done.items, "retired");
    assert!(e.code.as_deref().unwrap().contains("1458"), "{e:?}");
    assert!(
        e.hint
            .as_deref()
            .is_some_and(|h| h.contains("is being deleted")),
        "what to do is the hint: {e:?}"
    );
    assert!(
        e.request_id.is_some() && e.http_status == Some(400),
        "{e:?}"
    );
    emu.shutdown().await;
}

/// A server that issues tokens, lists nothing, and refuses every create with
/// an RFC 7807 body whose only message is `detail`.
async fn rfc7807_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = Vec::new();
                // Head and (small) body arrive in a few reads.
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&got);
                let (status, body) = if text.starts_with("POST /ims") {
                    (
                        "200 OK",
                        r#"{"access_token":"t0k","token_type":"bearer","expires_in":86399}"#,
                    )
                } else if text.starts_with("GET ") {
                    ("200 OK", r#"{"items":[]}"#)
                } else {
                    (
                        "400 Bad Request",
                        r#"{"type":"https://ns.adobe.com/aep/errors/FLOW-1424-400","title":"BadRequestError","status":400,"detail":"The connection name is reserved for system use"}"#,
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-request-id: req-7807\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn an_rfc7807_answer_with_only_detail_shows_its_detail_code_and_request_id() {
    let (base, server) = rfc7807_server().await;
    let config = ClientConfig::new(
        format!("{base}/data/foundation/flowservice")
            .parse()
            .unwrap(),
        ORG,
        "atsprov-realapi",
        Auth::ClientCredentials {
            token_url: format!("{base}/ims/token/v3").parse().unwrap(),
            client_secret: Secret::new("realapi-test-secret"),
            scopes: vec!["openid".into()],
        },
    );
    let ours = Client::new(config).unwrap();
    let want = desired(1);
    let p = plan_for(&ours, &want).await;
    let (_tx, never) = Interrupt::channel();
    let done = apply(&ours, &p, &want, options(1, 100), &Unobserved, never).await;
    let e = failed(&done.items, "conn-000");
    assert_eq!(e.kind, ErrorKind::Api, "{e:?}");
    assert_eq!(e.http_status, Some(400));
    assert_eq!(e.code.as_deref(), Some("FLOW-1424-400"));
    assert_eq!(e.request_id.as_deref(), Some("req-7807"));
    assert!(
        e.message
            .contains("The connection name is reserved for system use"),
        "{e:?}"
    );
    server.abort();
}
