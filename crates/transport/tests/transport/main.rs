//! The transport's integration tests, one binary: the Flow Service calls
//! against wiremock (`flow`), its tokens (`tokens`) and listings
//! (`listing`), servers that misbehave (`hostile`), the real emulator
//! (`emulator`), the Table key check (`table`) and secrets in logs (`logs`).
//! Shared here: the client setup and the request boilerplate.

mod emulator;
mod flow;
mod hostile;
mod listing;
mod logs;
mod table;
mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atsprov_model::Secret;
use atsprov_model::manifest::Auth;
use atsprov_model::wire::{ATS_CONNECTION_SPEC_ID, NewConnection};
use atsprov_transport::{Client, ClientConfig, RetryPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BASE: &str = "/data/foundation/flowservice";
const TOKEN_PATH: &str = "/ims/token/v3";
const ETAG: &str = "\"6802064a-0000-0200-0000-6387c6b90000\"";

/// Fast retries so the loops finish at once.
fn tiny_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        max_elapsed: Duration::from_secs(30),
        max_retry_after: Duration::from_millis(20),
    }
}

fn config(base: &str, auth: Auth) -> ClientConfig {
    let mut config = ClientConfig::new(
        Url::parse(&format!("{base}{BASE}")).unwrap(),
        "ORG123@AdobeOrg",
        "client-id-1",
        auth,
    );
    config.retry = tiny_policy();
    config
}

fn ready_token() -> Auth {
    Auth::AccessToken(Secret::new("ready-token-1"))
}

fn credentials(server: &MockServer) -> Auth {
    Auth::ClientCredentials {
        token_url: Url::parse(&format!("{}{TOKEN_PATH}", server.uri())).unwrap(),
        client_secret: Secret::new("client-secret-1"),
        scopes: vec!["openid".into(), "AdobeID".into()],
    }
}

fn client(server: &MockServer, auth: Auth) -> Client {
    Client::new(config(&server.uri(), auth)).unwrap()
}

fn item(id: &str, name: &str) -> Value {
    json!({
        "id": id, "name": name, "description": "d",
        "connectionSpec": {"id": ATS_CONNECTION_SPEC_ID, "version": "1.0"},
        "state": "enabled", "etag": ETAG,
    })
}

fn token_answer(token: &str, expires_in: impl serde::Serialize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token, "token_type": "bearer", "expires_in": expires_in
    }))
}

async fn requests_to(server: &MockServer, wanted: &str) -> usize {
    let all = server.received_requests().await.unwrap();
    all.iter()
        .filter(|r| r.url.path().starts_with(wanted))
        .count()
}

/// IMS answers `token-a` once, then `token-b` every time after.
async fn first_token_a_then_b(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_answer("token-a", 86399))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_answer("token-b", 86399))
        .mount(server)
        .await;
}

fn new_connection(name: &str) -> NewConnection {
    NewConnection::ats(
        name,
        "Sales EU tables",
        Secret::new("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey=a2V5LTE="),
    )
}

/// Mounts `answer` for every `verb` request below the Flow Service base path.
async fn answer_all(server: &MockServer, verb: &str, answer: ResponseTemplate) {
    Mock::given(method(verb))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// A list answer (`{"items": …}`) with an optional next-page link.
fn page(items: Vec<Value>, next: Option<&str>) -> ResponseTemplate {
    let mut body = json!({ "items": items });
    if let Some(href) = next {
        body["_links"] = json!({"next": {"href": href}});
    }
    ResponseTemplate::new(200).set_body_json(body)
}

/// IMS answers every token request with `answer`.
async fn ims_answers(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// A raw server that reads one whole request per connection, then either
/// closes the connection or keeps it open without answering.
async fn silent_server(close: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            read_request(&mut socket).await;
            if close {
                let _ = socket.shutdown().await;
            } else {
                held.push(socket);
            }
        }
    });
    (base, accepted)
}

async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = socket.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return;
            }
        }
    }
}
