//! Hostile clients: slow or idle requests are cut off, and the token store stays bounded.

use std::time::Duration;

use atsprov_emulator::Config;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Short deadlines, so the tests end quickly; nothing asserts how long anything took.
fn quick() -> Config {
    Config {
        header_read_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

/// Sends `head` and then one byte of `drip` every 50 ms while reading; returns what the
/// server sent before closing, or `None` when it was still open after the whole drip.
async fn drip(addr: std::net::SocketAddr, head: &[u8], drip: &[u8]) -> Option<Vec<u8>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    write.write_all(head).await.unwrap();
    for byte in drip {
        if reader.is_finished() || write.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !reader.is_finished() {
        // The whole drip went through and the server still holds the connection.
        reader.abort();
        return None;
    }
    Some(reader.await.unwrap())
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off() {
    let env = Env::start(quick()).await;
    // A header line that never ends, a byte at a time: far longer than the deadline.
    let got = drip(
        env.emu.addr(),
        b"GET /data/foundation/flowservice/connections HTTP/1.1\r\nhost: x\r\nx-slow: ",
        &[b'a'; 2000],
    )
    .await
    .expect("the server closed the connection");
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // The server still answers others.
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_eq!(res.status(), 200);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let env = Env::start(quick()).await;
    // Nothing is sent: the server closes the connection once the head deadline passes.
    let mut stream = TcpStream::connect(env.emu.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
        .await
        .expect("closed before the test's own bound");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_connection_closes() {
    let env = Env::start(quick()).await;
    let head = format!(
        "POST /data/foundation/flowservice/connections HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-api-key: {API_KEY}\r\nx-gw-ims-org-id: {ORG}\r\nx-sandbox-name: prod\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{{\"name\":",
        env.token
    );
    let got = drip(env.emu.addr(), head.as_bytes(), &[b' '; 2000])
        .await
        .expect("the server closed the connection");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("408000"), "{text}");
    assert_eq!(env.stats().await["connections"], 0);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn the_token_store_keeps_the_newest_tokens_only() {
    let env = Env::start(Config {
        max_tokens: 2,
        ..Config::default()
    })
    .await;
    let second = token(&env.http, &env.emu, API_KEY, "s").await;
    let third = token(&env.http, &env.emu, API_KEY, "s").await;
    // The first token (the env's) was the oldest: forgotten.
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_gateway_error(res, 401, "401013").await;
    for live in [second, third] {
        let res = env
            .http
            .get(env.url("/connections"))
            .header("authorization", format!("Bearer {live}"))
            .header("x-api-key", API_KEY)
            .header("x-gw-ims-org-id", ORG)
            .header("x-sandbox-name", "prod")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(env.stats().await["tokens_live"], 2);
    env.emu.shutdown().await;
}
