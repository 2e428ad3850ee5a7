//! The client against the real emulator on an ephemeral 127.0.0.1 port: the
//! whole connection life cycle, paging, tokens, rate limits and injected faults.

use std::time::Duration;

use atsprov_emulator::{Config, RunningEmulator};
use atsprov_model::Secret;
use atsprov_model::manifest::Auth;
use atsprov_model::wire::{NewConnection, PatchOp};
use atsprov_transport::{Client, ClientConfig, ErrorKind, RetryPolicy};
use futures::StreamExt;
use serde_json::Value;
use url::Url;

const CLIENT_ID: &str = "client-id-e2e";
const CLIENT_SECRET: &str = "client-secret-e2e";

async fn emulator(config: Config) -> RunningEmulator {
    atsprov_emulator::start(Config {
        client_credentials: Some((CLIENT_ID.into(), CLIENT_SECRET.into())),
        ..config
    })
    .await
    .unwrap()
}

fn client_with(emulator: &RunningEmulator, secret: &str, retry: RetryPolicy) -> Client {
    let mut config = ClientConfig::new(
        Url::parse(&emulator.flow_url()).unwrap(),
        "ORG1@AdobeOrg",
        CLIENT_ID,
        Auth::ClientCredentials {
            token_url: Url::parse(&emulator.token_url()).unwrap(),
            client_secret: Secret::new(secret),
            scopes: vec!["openid".into(), "AdobeID".into()],
        },
    );
    config.retry = retry;
    Client::new(config).unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn client(emulator: &RunningEmulator) -> Client {
    client_with(emulator, CLIENT_SECRET, fast_retries())
}

fn ats(name: &str, key: &str) -> NewConnection {
    NewConnection::ats(
        name,
        "managed",
        Secret::new(format!(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key}"
        )),
    )
}

async fn emulator_stats(emulator: &RunningEmulator) -> Value {
    reqwest::get(emulator.stats_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_connection_life_cycle() {
    let emulator = emulator(Config::default()).await;
    let client = client(&emulator);
    client.authenticate().await.unwrap();

    let written = client
        .create_connection("dev", &ats("sales-eu", "a2V5LTE="))
        .await
        .unwrap();
    assert!(
        written.etag.starts_with('"') && written.etag.ends_with('"'),
        "{}",
        written.etag
    );
    let read = client.get_connection("dev", &written.id).await.unwrap();
    assert_eq!(
        (read.name.as_str(), read.etag.as_str()),
        ("sales-eu", written.etag.as_str())
    );
    assert!(client.test_connection("dev", &written.id).await.unwrap());
    // Sandboxes are isolated.
    assert!(client.list_connections("prod").await.unwrap().is_empty());
    let e = client
        .get_connection("prod", &written.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let ops = [
        PatchOp::Credentials(Secret::new(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=bm90LWJhc2U2NA-!",
        )),
        PatchOp::Description("managed, rotated".into()),
    ];
    let patched = client
        .patch_connection("dev", &written.id, &written.etag, &ops)
        .await
        .unwrap();
    assert_ne!(patched.etag, written.etag);
    let read = client.get_connection("dev", &written.id).await.unwrap();
    assert_eq!(read.description.as_deref(), Some("managed, rotated"));
    assert!(!client.test_connection("dev", &written.id).await.unwrap());

    // The old etag is stale now.
    let e = client
        .patch_connection("dev", &written.id, &written.etag, &ops)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.status()),
        (ErrorKind::PreconditionFailed, Some(412))
    );
    assert_eq!(e.code(), Some("FLOW-1404-412"));
    assert!(e.request_id().is_some(), "{e}");
    assert!(e.to_string().contains("in sandbox `dev`"), "{e}");

    client.delete_connection("dev", &written.id).await.unwrap();
    let e = client.get_connection("dev", &written.id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = client
        .delete_connection("dev", &written.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let stats = client.stats();
    assert_eq!(
        (stats.token_requests, stats.retries, stats.throttled),
        (1, 0, 0)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn listing_reads_every_page_and_names_match_exactly() {
    // More than one page of the largest size.
    let count = 1003;
    let emulator = emulator(Config::default()).await;
    let client = client(&emulator);
    let created: Vec<_> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let name = if i % 500 == 0 {
                "twin".to_owned()
            } else {
                format!("conn-{i:04}")
            };
            async move {
                client
                    .create_connection("dev", &ats(&name, "a2V5"))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(created.len(), count);
    client
        .create_connection("dev", &ats("a,b", "a2V5"))
        .await
        .unwrap();

    let all = client.list_connections("dev").await.unwrap();
    assert_eq!(all.len(), count + 1);
    let mut ids: Vec<_> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count + 1);

    let twins = client.list_connections_named("dev", "twin").await.unwrap();
    assert_eq!(twins.len(), 3);
    let odd = client.list_connections_named("dev", "a,b").await.unwrap();
    assert_eq!(odd.len(), 1);
    assert!(
        client
            .list_connections_named("dev", "conn-0001")
            .await
            .unwrap()
            .len()
            == 1
    );

    let stats = emulator_stats(&emulator).await;
    assert_eq!(stats["by_route"]["list"], 2 + 2 + 1 + 1, "{stats}");

    // By id: only those asked for, in one filtered listing; none asked, no call.
    let wanted = [
        created[0].id.as_str(),
        created[700].id.as_str(),
        "no-such-id",
    ];
    let mut found: Vec<String> = client
        .list_connections_by_ids("dev", &wanted)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    found.sort_unstable();
    let mut expected = vec![created[0].id.clone(), created[700].id.clone()];
    expected.sort_unstable();
    assert_eq!(found, expected);
    assert!(
        client
            .list_connections_by_ids("dev", &[])
            .await
            .unwrap()
            .is_empty()
    );
    let stats = emulator_stats(&emulator).await;
    assert_eq!(stats["by_route"]["list"], 2 + 2 + 1 + 1 + 1, "{stats}");
    assert_eq!(stats["lists_by_id"], 1, "{stats}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_once() {
    let emulator = emulator(Config::default()).await;
    let client = client_with(&emulator, "not-the-secret", fast_retries());
    let e = client.authenticate().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.code(), Some("invalid_client"));
    assert!(
        e.to_string()
            .contains("client credentials were refused by IMS"),
        "{e}"
    );
    assert!(e.to_string().contains(&emulator.token_url()), "{e}");
    let e = client.list_connections("dev").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(client.stats().token_requests, 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let emulator = emulator(Config {
        rate_limit: Some(5),
        ..Config::default()
    })
    .await;
    let retry = RetryPolicy {
        max_attempts: 10,
        ..RetryPolicy::default()
    };
    let client = client_with(&emulator, CLIENT_SECRET, retry);
    let calls = (0..15).map(|_| {
        let client = client.clone();
        async move { client.list_connections("dev").await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let stats = client.stats();
    let served = emulator_stats(&emulator).await;
    assert!(stats.throttled > 0, "{stats:?}");
    assert_eq!(served["rate_limited"], stats.throttled, "{served}");
    assert_eq!(stats.requests, 15 + stats.retries);
    emulator.shutdown().await;
}

#[tokio::test]
async fn injected_failures_are_retried_then_reported() {
    let emulator = emulator(Config {
        fail_rate: 1.0,
        ..Config::default()
    })
    .await;
    let client = client(&emulator);
    let e = client.list_connections("dev").await.unwrap_err();
    assert_eq!(
        (e.kind(), e.status(), e.code()),
        (ErrorKind::Server, Some(503), Some("FLOW-1103-503"))
    );
    let e = client
        .create_connection("dev", &ats("n", "a2V5"))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server,
        "a 503 create is refused, not ambiguous: {e}"
    );
    let served = emulator_stats(&emulator).await;
    assert_eq!(served["injected_failures"], 8, "{served}");
    assert_eq!(served["writes"], 0, "{served}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn dropped_writes() {
    let emulator = emulator(Config {
        ambiguous_rate: 1.0,
        ..Config::default()
    })
    .await;
    let client = client(&emulator);
    // A dropped create is ambiguous and not repeated: exactly one connection exists.
    let e = client
        .create_connection("dev", &ats("sales-eu", "a2V5"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
    let live = client
        .list_connections_named("dev", "sales-eu")
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    // A dropped patch is repeated; the repeat meets the new etag and says so.
    let ops = [PatchOp::Description("new".into())];
    let e = client
        .patch_connection("dev", &live[0].id, &live[0].etag, &ops)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    // A dropped delete is repeated; the repeat finds nothing.
    let e = client
        .delete_connection("dev", &live[0].id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let served = emulator_stats(&emulator).await;
    assert_eq!(served["writes"], 3, "{served}");
    assert_eq!(served["connections"], 0, "{served}");
    emulator.shutdown().await;
}
