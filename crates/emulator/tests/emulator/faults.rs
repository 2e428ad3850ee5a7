//! Fault flags: latency, rate limit, fail rate and ambiguous writes, with fixed seeds.

use std::time::Duration;

use atsprov_emulator::Config;
use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn latency_holds_api_answers_but_not_the_stats() {
    // A latency far longer than the client waits: the API answer does not come, the stats
    // (never delayed) do. Nothing here measures time.
    let emu = atsprov_emulator::start(Config {
        latency: Duration::from_secs(600),
        ..Config::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let err = http
        .get(format!("{}/connections", emu.flow_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("no answer while the latency runs");
    assert!(err.is_timeout(), "{err}");
    let res = http
        .get(emu.stats_url())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Not shut down gracefully: that would wait for the held answer; the runtime ends it.
    drop(emu);
}

#[tokio::test]
async fn fail_rate_answers_503_at_about_the_rate_and_repeats_with_a_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let env = Env::start(Config {
            fail_rate: 0.3,
            seed: Some(42),
            ..Config::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..300 {
            let res = env.req(Method::GET, "/connections").send().await.unwrap();
            let status = res.status().as_u16();
            if status == 503 {
                assert_flow_error(res, "1103-503").await;
            }
            statuses.push(status);
        }
        let failed = statuses.iter().filter(|s| **s == 503).count();
        assert!((60..=120).contains(&failed), "{failed} of 300 at rate 0.3");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 503));
        assert_eq!(env.stats().await["injected_failures"], failed);
        // The token endpoint is never failed.
        token(&env.http, &env.emu, API_KEY, "x").await;
        runs.push(statuses);
        env.emu.shutdown().await;
    }
    assert_eq!(runs[0], runs[1], "same seed, same faults");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_organization() {
    let mut env = Env::start(Config {
        rate_limit: Some(5),
        ..Config::default()
    })
    .await;
    // The bucket starts full: a burst of 5 always passes, however slow the machine.
    for i in 0..5 {
        let res = env.req(Method::GET, "/connections").send().await.unwrap();
        assert_eq!(res.status(), 200, "request {i} of the burst");
    }
    // Then a request is refused as soon as requests come faster than 5 a second.
    // Counted, not timed: send until one is refused. None of 500 being refused
    // would take every request over 0.2 s, i.e. a loop running for minutes.
    let mut retry_after = None;
    for _ in 0..500 {
        let res = env.req(Method::GET, "/connections").send().await.unwrap();
        match res.status().as_u16() {
            200 => {}
            429 => {
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                assert_gateway_error(res, 429, "429050").await;
                retry_after = Some(retry);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let retry = retry_after.expect("no 429 in 500 requests at 5 a second");
    assert_eq!(env.stats().await["rate_limited"], 1);
    assert_eq!(env.stats().await["by_status"]["429"], 1);
    // Waiting as long as `Retry-After` says is enough: the bucket only fills
    // while we wait, so a longer wait (a loaded machine) cannot fail this.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_eq!(res.status(), 200, "after waiting Retry-After");
    // Another organization has its own bucket.
    env.org = "OTHER@AdobeOrg".into();
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_eq!(res.status(), 200);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn ambiguous_writes_are_carried_out_then_the_connection_drops() {
    let env = Env::start(Config {
        ambiguous_rate: 0.5,
        seed: Some(7),
        ..Config::default()
    })
    .await;
    let mut dropped = 0;
    for i in 0..100 {
        // A fresh client each time, so a dropped connection is not reused.
        let res = env
            .req(Method::POST, "/connections")
            .json(&new_connection(&format!("c{i}")))
            .send()
            .await;
        match res {
            Ok(res) => assert_eq!(res.status(), 201),
            Err(err) => {
                assert!(!err.is_status() && !err.is_timeout(), "{err}");
                dropped += 1;
            }
        }
    }
    assert!((30..=70).contains(&dropped), "{dropped} of 100 at rate 0.5");
    let stats = env.stats().await;
    assert_eq!(stats["dropped"], dropped, "{stats}");
    assert_eq!(stats["writes"], 100);
    // Every write was carried out, dropped or not.
    let (status, body) = parts(
        env.req(Method::GET, "/connections?count=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"count": 100})));
    // Reads are never dropped.
    for _ in 0..20 {
        assert_eq!(
            env.req(Method::GET, "/connections")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_dropped_answer_sends_no_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start(Config {
        ambiguous_rate: 1.0,
        ..Config::default()
    })
    .await;
    let body = new_connection("raw").to_string();
    let request = format!(
        "POST /data/foundation/flowservice/connections HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-api-key: {API_KEY}\r\nx-gw-ims-org-id: {ORG}\r\nx-sandbox-name: prod\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        env.token,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(env.emu.addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // Ends at EOF (or a reset): the server closed without answering.
    let _ = stream.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let (_, count) = parts(
        env.req(Method::GET, "/connections?count=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(count, json!({"count": 1}));
    env.emu.shutdown().await;
}
