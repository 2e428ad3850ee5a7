//! Servers that misbehave: every answer is read strictly, capped in size and
//! bounded in time; paging ends; hostile token lifetimes neither panic nor
//! loop; echoed tokens never show. Each test fails on a client that trusts
//! the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atsprov_model::wire::ATS_CONNECTION_SPEC_ID;
use atsprov_transport::{Client, ErrorKind, Limits, counting_attempts};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{
    BASE, answer_all, client, config, credentials, ims_answers, item, new_connection, page,
    read_request, ready_token, requests_to, token_answer,
};

/// A raw server: for each connection, reads one request and runs `serve`.
async fn raw_server<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                serve(socket).await;
            });
        }
    });
    (base, accepted)
}

#[tokio::test]
async fn answers_missing_required_fields_are_errors_never_defaults() {
    // (answer to GET /connections, what is wrong)
    let cases = [
        (json!({}), "no `items`: not an empty sandbox"),
        (json!({"items": null}), "null `items`"),
        (
            json!({"items": [{"id": "c1", "connectionSpec": {"id": ATS_CONNECTION_SPEC_ID}, "etag": "\"e\""}]}),
            "an item without a name",
        ),
        (
            json!({"items": [{"id": "c1", "name": "n", "connectionSpec": {"id": ATS_CONNECTION_SPEC_ID}}]}),
            "an item without an etag",
        ),
        (json!([]), "not an object"),
    ];
    for (body, what) in cases {
        let server = MockServer::start().await;
        answer_all(
            &server,
            "GET",
            ResponseTemplate::new(200).set_body_json(body),
        )
        .await;
        let client = client(&server, ready_token());
        let e = client.list_connections("prod").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{what}: {e}");
        let e = client.get_connection("prod", "c1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{what}: {e}");
    }
    // A create answered 201 `{}` was carried out; only its answer is unreadable.
    let server = MockServer::start().await;
    answer_all(
        &server,
        "POST",
        ResponseTemplate::new(201).set_body_json(json!({})),
    )
    .await;
    let e = client(&server, ready_token())
        .create_connection("prod", &new_connection("n"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
}

#[tokio::test]
async fn a_body_just_over_the_cap_is_refused() {
    let cap = Limits::default().max_body_bytes;
    // A list answer of exactly `len` bytes.
    let padded = |len: usize| {
        let filler = "x".repeat(len - r#"{"items":[],"pad":""}"#.len());
        format!(r#"{{"items":[],"pad":"{filler}"}}"#)
    };
    let body = padded(cap + 1);
    assert_eq!(body.len(), cap + 1);
    let server = MockServer::start().await;
    answer_all(
        &server,
        "GET",
        ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"),
    )
    .await;
    let client = client(&server, ready_token());
    let e = client.list_connections("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("larger than 8 MiB"), "{e}");
    // Never retried: the same answer would come again.
    assert_eq!(requests_to(&server, BASE).await, 1);

    // One byte less is read.
    let server = MockServer::start().await;
    answer_all(
        &server,
        "GET",
        ResponseTemplate::new(200).set_body_raw(padded(cap), "application/json"),
    )
    .await;
    assert!(
        client_at(&server)
            .list_connections("prod")
            .await
            .unwrap()
            .is_empty()
    );
}

fn client_at(server: &MockServer) -> Client {
    client(server, ready_token())
}

/// A body without a length that never ends (as a 1.5 GB one would): reading
/// stops at the cap instead of holding it all in memory or waiting for the end.
#[tokio::test]
async fn an_endless_streamed_body_stops_at_the_cap() {
    let (base, accepted) = raw_server(|mut socket| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        // Until the client hangs up.
        while socket.write_all(chunk.as_bytes()).await.is_ok() {}
    })
    .await;
    let mut config = config(&base, ready_token());
    config.limits.max_body_bytes = 1024 * 1024;
    let client = Client::new(config).unwrap();
    let e = client.list_connections("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("larger than 1 MiB"), "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Headers at once, then a body that never completes: the request deadline
/// covers the body too, and the attempt is counted, never waited on forever.
#[tokio::test]
async fn a_body_that_stalls_is_cut_by_the_request_deadline() {
    let (base, accepted) = raw_server(|mut socket| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"items\":[";
        let _ = socket.write_all(head.as_bytes()).await;
        // Hold the connection open, silent, until the client gives up.
        let mut buf = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
    })
    .await;
    let mut config = config(&base, ready_token());
    config.request_timeout = Duration::from_millis(200);
    config.retry.max_attempts = 2;
    let client = Client::new(config).unwrap();
    let e = client.list_connections("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.attempts(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Answers every listing with a page whose next link carries a new token.
struct EndlessPages(AtomicUsize);

impl Respond for EndlessPages {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        page(
            vec![item(&format!("c{n}"), "n")],
            Some(&format!("/connections?continuationToken=t{n}")),
        )
    }
}

#[tokio::test]
async fn paging_that_never_ends_stops_at_the_page_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(EndlessPages(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let mut config = config(&server.uri(), ready_token());
    config.limits.max_pages = 7;
    let client = Client::new(config).unwrap();
    let e = client.list_connections("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("did not end after 7 pages"), "{e}");
    assert_eq!(requests_to(&server, BASE).await, 7);

    // The item bound ends it as well, with its own message.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(EndlessPages(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let mut config = super::config(&server.uri(), ready_token());
    config.limits.max_items = 3;
    let e = Client::new(config)
        .unwrap()
        .list_connections("prod")
        .await
        .unwrap_err();
    assert!(e.message().contains("more than 3 connections"), "{e}");
    assert_eq!(requests_to(&server, BASE).await, 4);
}

#[tokio::test]
async fn a_next_link_repeating_an_earlier_token_is_an_error() {
    let server = MockServer::start().await;
    let pages = [(None, "t1"), (Some("t1"), "t2"), (Some("t2"), "t1")];
    for (token, next) in pages {
        let mut mock = Mock::given(method("GET")).and(path(format!("{BASE}/connections")));
        mock = match token {
            Some(token) => mock.and(query_param("continuationToken", token)),
            None => mock.and(wiremock::matchers::query_param_is_missing(
                "continuationToken",
            )),
        };
        mock.respond_with(page(
            vec![],
            // Different links, the same token: still a loop.
            Some(&format!(
                "/connections?continuationToken={next}&n={}",
                token.unwrap_or("0")
            )),
        ))
        .mount(&server)
        .await;
    }
    let e = client_at(&server)
        .list_connections("prod")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("repeats a page already read"), "{e}");
    assert_eq!(requests_to(&server, BASE).await, 3);
}

#[tokio::test]
async fn hostile_token_lifetimes_neither_panic_nor_loop() {
    // (expires_in, token requests for authenticate + 2 calls)
    let cases = [
        (json!(u64::MAX), 1),
        (json!(1e300), 1),
        (json!(86_399), 1),
        (json!(0), 3),
        (json!(-1), 3),
        (json!(i64::MIN), 3),
    ];
    for (expires_in, token_requests) in cases {
        let server = MockServer::start().await;
        ims_answers(&server, token_answer("token-a", expires_in.clone())).await;
        answer_all(&server, "GET", page(vec![item("c1", "n")], None)).await;
        let client = client(&server, credentials(&server));
        client.authenticate().await.unwrap();
        // A short-lived token serves the call that fetched it, once.
        client.list_connections("prod").await.unwrap();
        client.list_connections("prod").await.unwrap();
        assert_eq!(
            client.stats().token_requests,
            token_requests,
            "expires_in {expires_in}"
        );
        assert_eq!(requests_to(&server, BASE).await, 2);
    }
}

#[tokio::test]
async fn echoed_access_tokens_never_show() {
    const OURS: &str = "ready-token-1";
    const THEIRS: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.other";
    let bodies = [
        json!({"title": "Bad", "detail": format!("header Authorization: Bearer {OURS} refused")}),
        json!({"error_code": "401013", "message": format!("Bearer {THEIRS} is not valid")}),
        json!({"type": "x/FLOW-1-400", "errorMessage": format!("token {OURS}; {{\"access_token\":\"{THEIRS}\"}}")}),
    ];
    let texts = [
        format!("Authorization: Bearer {THEIRS}"),
        format!("bad token {OURS}"),
    ];
    let mut answers: Vec<ResponseTemplate> = bodies
        .iter()
        .map(|b| ResponseTemplate::new(400).set_body_json(b))
        .collect();
    answers.extend(
        texts
            .iter()
            .map(|t| ResponseTemplate::new(400).set_body_string(t.clone())),
    );
    for answer in answers {
        let server = MockServer::start().await;
        answer_all(
            &server,
            "GET",
            answer.insert_header("x-request-id", format!("Bearer {THEIRS}").as_str()),
        )
        .await;
        let e = client_at(&server)
            .list_connections("prod")
            .await
            .unwrap_err();
        let text = format!("{e} {e:?} {}", e.message());
        assert!(!text.contains(OURS), "{text}");
        assert!(!text.contains(THEIRS), "{text}");
        assert!(text.contains("***"), "{text}");
    }
    // And from IMS, in a JSON error body.
    let server = MockServer::start().await;
    ims_answers(
        &server,
        ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_request",
            "error_description": format!("\"access_token\": \"{THEIRS}\" Bearer {THEIRS}")
        })),
    )
    .await;
    let e = client(&server, credentials(&server))
        .authenticate()
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains(THEIRS), "{text}");
}

#[tokio::test]
async fn a_refused_connection_names_the_url_and_the_cause() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = config(&format!("http://127.0.0.1:{port}"), ready_token());
    config.retry.max_attempts = 1;
    let e = Client::new(config)
        .unwrap()
        .list_connections("prod")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(
        e.message(),
        format!("could not connect to http://127.0.0.1:{port} (connection refused)")
    );
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn attempts_are_counted_per_item_retries_and_renewals_included() {
    let server = MockServer::start().await;
    ims_answers(&server, token_answer("token-a", 86_399)).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    answer_all(&server, "GET", page(vec![item("c1", "n")], None)).await;
    let client = client(&server, credentials(&server));
    let (listed, attempts) = counting_attempts(async {
        let first = client.list_connections("prod").await?;
        let again = client.get_connection("prod", "c1").await?;
        Ok::<_, atsprov_transport::Error>((first, again))
    })
    .await;
    listed.unwrap();
    // 1 token request, 2 refusals, the listing, the read.
    assert_eq!(attempts, 5);
}

/// https:// to a server that speaks plain HTTP: the TLS handshake fails,
/// and the message says so (and where), not "could not reach".
#[tokio::test]
async fn a_failed_tls_handshake_is_named() {
    let server = MockServer::start().await;
    let port = server.address().port();
    let mut config = config(&format!("https://127.0.0.1:{port}"), ready_token());
    config.retry.max_attempts = 1;
    let e = Client::new(config)
        .unwrap()
        .list_connections("prod")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert_eq!(
        e.message(),
        format!(
            "could not connect to https://127.0.0.1:{port} (TLS handshake failed: check the URL and any proxy that intercepts TLS)"
        )
    );
}
