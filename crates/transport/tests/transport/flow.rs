//! The Flow Service calls pinned against wiremock on 127.0.0.1: headers,
//! retries, `Retry-After`, error shapes and hints, ambiguous creates and
//! hidden secrets. Tokens are in `tokens`, listings in `listing`.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use atsprov_model::Secret;
use atsprov_model::manifest::Auth;
use atsprov_model::wire::{ATS_CONNECTION_SPEC_ID, NewConnection, PatchOp};
use atsprov_transport::{Client, ErrorKind};
use serde_json::json;
use tokio::net::TcpListener;
use url::Url;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{
    BASE, ETAG, client, config, credentials, ims_answers, item, new_connection, page, ready_token,
    requests_to, silent_server,
};

#[tokio::test]
async fn every_call_carries_the_identity_headers() {
    let server = MockServer::start().await;
    let user_agent = format!("atsprov/{}", env!("CARGO_PKG_VERSION"));
    let common = |m: wiremock::MockBuilder| {
        m.and(header("authorization", "Bearer ready-token-1"))
            .and(header("x-api-key", "client-id-1"))
            .and(header("x-gw-ims-org-id", "ORG123@AdobeOrg"))
            .and(header("x-sandbox-name", "prod"))
            .and(header("user-agent", user_agent.as_str()))
    };
    common(Mock::given(method("GET")).and(path(format!("{BASE}/connections/c1"))))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"items": [item("c1", "sales-eu")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    common(Mock::given(method("POST")).and(path(format!("{BASE}/connections"))))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "name": "sales-eu",
            "description": "Sales EU tables",
            "auth": {"specName": "Connection String Based Authentication",
                     "params": {"connectionString": "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey=a2V5LTE="}},
            "connectionSpec": {"id": ATS_CONNECTION_SPEC_ID, "version": "1.0"}
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "c2", "etag": ETAG})))
        .expect(1)
        .mount(&server)
        .await;
    common(Mock::given(method("PATCH")).and(path(format!("{BASE}/connections/c1"))))
        .and(header("content-type", "application/json"))
        .and(header("if-match", ETAG))
        .and(body_json(
            json!([{"op": "add", "path": "/description", "value": "new"}]),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "c1", "etag": "\"e2\""})),
        )
        .expect(1)
        .mount(&server)
        .await;
    common(Mock::given(method("DELETE")).and(path(format!("{BASE}/connections/c1"))))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    common(Mock::given(method("GET")).and(path(format!("{BASE}/connections/c1/test"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": false})))
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server, ready_token());
    let got = client.get_connection("prod", "c1").await.unwrap();
    assert_eq!(
        (got.id.as_str(), got.name.as_str(), got.etag.as_str()),
        ("c1", "sales-eu", ETAG)
    );
    let created = client
        .create_connection("prod", &new_connection("sales-eu"))
        .await
        .unwrap();
    assert_eq!((created.id.as_str(), created.etag.as_str()), ("c2", ETAG));
    let ops = [PatchOp::Description("new".into())];
    let patched = client
        .patch_connection("prod", "c1", ETAG, &ops)
        .await
        .unwrap();
    assert_eq!(patched.etag, "\"e2\"");
    client.delete_connection("prod", "c1").await.unwrap();
    assert!(!client.test_connection("prod", "c1").await.unwrap());
    let stats = client.stats();
    assert_eq!(
        (stats.requests, stats.retries, stats.token_requests),
        (5, 0, 0)
    );
}

/// Which statuses are retried, and how often, for a repeatable call and for a create.
#[tokio::test]
async fn retried_statuses_and_attempt_counts() {
    // (status, GET attempts, POST attempts, kind): a 429 (not carried out)
    // has four times the attempts, so a tight rate limit slows, not fails.
    let cases = [
        (429, 16, 16, ErrorKind::RateLimited),
        (500, 4, 1, ErrorKind::Server),
        (502, 4, 1, ErrorKind::Server),
        (503, 4, 4, ErrorKind::Server),
        (504, 4, 1, ErrorKind::Server),
        (400, 1, 1, ErrorKind::BadRequest),
        (401, 1, 1, ErrorKind::Unauthorized),
        (403, 1, 1, ErrorKind::Forbidden),
        (404, 1, 1, ErrorKind::NotFound),
        (409, 1, 1, ErrorKind::BadRequest),
        (412, 1, 1, ErrorKind::PreconditionFailed),
        (422, 1, 1, ErrorKind::BadRequest),
        (501, 1, 1, ErrorKind::Server),
    ];
    for (status, get_attempts, post_attempts, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let client = client(&server, ready_token());

        let e = client.get_connection("prod", "c1").await.unwrap_err();
        assert_eq!(e.kind(), kind, "GET {status}: {e}");
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.attempts() as usize, get_attempts, "GET {status}");
        assert_eq!(
            requests_to(&server, BASE).await,
            get_attempts,
            "GET {status}"
        );

        server.reset().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let e = client
            .create_connection("prod", &new_connection("n"))
            .await
            .unwrap_err();
        assert_eq!(
            requests_to(&server, BASE).await,
            post_attempts,
            "POST {status}"
        );
        // A create that may have been carried out is ambiguous, never retried.
        let post_kind = if matches!(status, 500 | 502 | 504) {
            ErrorKind::Ambiguous
        } else {
            kind
        };
        assert_eq!(e.kind(), post_kind, "POST {status}: {e}");

        let stats = client.stats();
        assert_eq!(
            stats.requests as usize,
            get_attempts + post_attempts,
            "{status}"
        );
        assert_eq!(
            stats.retries as usize,
            get_attempts + post_attempts - 2,
            "{status}"
        );
        // Every congestion answer reaches the caller's adaptive limiter.
        let throttled = if matches!(status, 429 | 500 | 502 | 503 | 504) {
            get_attempts + post_attempts
        } else {
            0
        };
        assert_eq!(stats.throttled as usize, throttled, "{status}");
    }
}

#[tokio::test]
async fn transient_failures_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![item("c1", "n")], None))
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    assert_eq!(client.get_connection("prod", "c1").await.unwrap().id, "c1");
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.throttled), (3, 2, 2));
}

/// `Retry-After` is read in both forms: a pause longer than the time budget
/// ends the call at once, where plain backoff would have retried.
#[tokio::test]
async fn retry_after_in_seconds_and_as_a_date() {
    let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let an_hour_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    // (Retry-After, attempts): 429s have four times the policy's 4 attempts.
    let cases = [
        (Some("3600".to_owned()), 1),
        (Some(in_an_hour), 1),
        (Some(an_hour_ago), 16),
        (Some("0".to_owned()), 16),
        (Some("not a date".to_owned()), 16),
        (None, 16),
    ];
    for (retry_after, attempts) in cases {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(429);
        if let Some(value) = &retry_after {
            answer = answer.insert_header("retry-after", value.as_str());
        }
        Mock::given(method("GET"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let mut config = config(&server.uri(), ready_token());
        config.retry.max_retry_after = Duration::from_secs(7200);
        config.retry.max_elapsed = Duration::from_secs(5);
        let client = Client::new(config).unwrap();
        let e = client.get_connection("prod", "c1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(
            requests_to(&server, BASE).await,
            attempts,
            "{retry_after:?}"
        );
    }
}

/// A long `Retry-After` is cut to `max_retry_after`, so the call goes on.
#[tokio::test]
async fn retry_after_is_capped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "86400"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![item("c1", "n")], None))
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    client.get_connection("prod", "c1").await.unwrap();
    assert_eq!(client.stats().retries, 1);
}

#[tokio::test]
async fn both_error_shapes_are_parsed() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({
            "type": "https://ns.adobe.com/aep/errors/FLOW-1404-412",
            "title": "Version not matching",
            "status": 412,
            "report": {"request-id": "abc-123"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-request-id", "gw-7")
                .set_body_json(json!({"error_code": "403003", "message": "Api Key is invalid"})),
        )
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let e = client
        .patch_connection("prod", "c1", ETAG, &[PatchOp::Description("d".into())])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(
        (e.status(), e.code(), e.request_id(), e.sandbox()),
        (
            Some(412),
            Some("FLOW-1404-412"),
            Some("abc-123"),
            Some("prod")
        )
    );
    assert_eq!(
        e.to_string(),
        "update connection `c1` in sandbox `prod`: HTTP 412 FLOW-1404-412 Version not matching (request id abc-123)"
    );
    let e = client.list_connections("dev").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert_eq!(
        e.to_string(),
        "list connections in sandbox `dev`: HTTP 403 403003 Api Key is invalid (request id gw-7)"
    );
}

#[tokio::test]
async fn a_create_dropped_after_sending_is_ambiguous_and_not_retried() {
    let (base, accepted) = silent_server(true).await;
    let client = Client::new(config(&base, ready_token())).unwrap();
    let e = client
        .create_connection("prod", &new_connection("sales-eu"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
    assert!(
        e.to_string()
            .starts_with("create `sales-eu` in sandbox `prod`: "),
        "{e}"
    );
    assert!(
        e.hint()
            .unwrap()
            .contains("may or may not have been created"),
        "{e:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn a_create_that_times_out_is_ambiguous_and_not_retried() {
    let (base, accepted) = silent_server(false).await;
    let mut config = config(&base, ready_token());
    config.request_timeout = Duration::from_millis(300);
    let client = Client::new(config).unwrap();
    let e = client
        .create_connection("prod", &new_connection("sales-eu"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn repeatable_calls_are_retried_after_a_drop_or_a_timeout() {
    let (base, accepted) = silent_server(true).await;
    let client = Client::new(config(&base, ready_token())).unwrap();
    let e = client.delete_connection("prod", "c1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 4);

    let (base, accepted) = silent_server(false).await;
    let mut config = config(&base, ready_token());
    config.request_timeout = Duration::from_millis(100);
    config.retry.max_attempts = 2;
    let client = Client::new(config).unwrap();
    let e = client
        .patch_connection("prod", "c1", ETAG, &[PatchOp::Description("d".into())])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_create() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(config(&base, ready_token())).unwrap();
    let e = client
        .create_connection("prod", &new_connection("n"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (4, 3));
}

#[test]
fn plain_http_is_refused_for_hosts_that_are_not_loopback() {
    let refused = Client::new(config("http://platform.adobe.io", ready_token())).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Config);
    assert!(refused.hint().unwrap().contains("use https"), "{refused}");

    let auth = Auth::ClientCredentials {
        token_url: Url::parse("http://ims-na1.adobelogin.com/ims/token/v3").unwrap(),
        client_secret: Secret::new("s"),
        scopes: vec![],
    };
    let refused = Client::new(config("https://platform.adobe.io", auth)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Config);
    assert!(refused.to_string().contains("IMS token URL"), "{refused}");

    for ok in [
        "http://127.0.0.1:1",
        "http://localhost:1",
        "http://[::1]:1",
        "http://localhost.:1",
        "http://[::ffff:127.0.0.1]:1",
        "https://platform.adobe.io",
    ] {
        Client::new(config(ok, ready_token())).unwrap();
    }
}

#[tokio::test]
async fn an_echoed_account_key_is_hidden_bare_and_in_any_case() {
    const KEY: &str = "c2VjcmV0LWFjY291bnQta2V5LTQy";
    let connection_string =
        format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={KEY}");
    let echoes = [
        format!("invalid account key {KEY} for saleseu"),
        format!("cannot use defaultendpointsprotocol=https;accountname=saleseu;accountkey={KEY}"),
        format!("bad params: accountkey={KEY}"),
    ];
    for echo in echoes {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header("x-request-id", format!("r-{KEY}").as_str())
                    .set_body_json(json!({
                        "type": "https://ns.adobe.com/aep/errors/FLOW-1400-400",
                        "title": format!("Bad request {KEY}"),
                        "errorMessage": echo,
                    })),
            )
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"error_code": "400003", "message": echo})),
            )
            .mount(&server)
            .await;
        let client = client(&server, ready_token());
        let created = NewConnection::ats("sales-eu", "d", Secret::new(connection_string.clone()));
        let e = client
            .create_connection("prod", &created)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest);
        let text = format!("{e} {e:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("***"), "{text}");
        let ops = [PatchOp::Credentials(Secret::new(connection_string.clone()))];
        let e = client
            .patch_connection("prod", "c1", ETAG, &ops)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest);
        let text = format!("{e} {e:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("***"), "{text}");
    }
}

/// Adobe's code, message and request id from whichever shape the body has,
/// and a hint for the codes whose message leaves a person guessing.
#[tokio::test]
async fn codes_messages_request_ids_and_hints_in_every_shape() {
    let flow = |code: &str, title: &str, detail: &str| {
        json!({
            "type": format!("https://ns.adobe.com/aep/errors/FLOW-{code}"),
            "title": title, "status": 400,
            "report": {"detailed-message": detail, "request-id": "rep-1"}
        })
    };
    // (body, code, message, request id, a word of the hint)
    let cases = [
        (
            json!({"type": "https://ns.adobe.com/aep/errors/FLOW-1405-400", "status": 400, "title": "BadRequestError", "detail": "A valid content-type must be specified"}),
            Some("FLOW-1405-400"),
            "A valid content-type must be specified",
            Some("hdr-1"),
            None,
        ),
        (
            flow("1418-400", "Delete refused", "used by dataflows"),
            Some("FLOW-1418-400"),
            "Delete refused: used by dataflows",
            Some("rep-1"),
            Some("delete those dataflows first"),
        ),
        (
            flow("1445-400", "PATCH Connection Feature not enabled", ""),
            Some("FLOW-1445-400"),
            "PATCH Connection Feature not enabled",
            Some("rep-1"),
            Some("ask Adobe support"),
        ),
        (
            flow("1416-400", "Invalid state", "state is delete-finalizing"),
            Some("FLOW-1416-400"),
            "Invalid state: state is delete-finalizing",
            Some("rep-1"),
            Some("allows no update or delete"),
        ),
        (
            flow("1457-400", "Cannot update", "delete-finalizing"),
            Some("FLOW-1457-400"),
            "Cannot update: delete-finalizing",
            Some("rep-1"),
            Some("being deleted"),
        ),
        (
            flow("1458-400", "Cannot delete", "delete-finalizing"),
            Some("FLOW-1458-400"),
            "Cannot delete: delete-finalizing",
            Some("rep-1"),
            Some("being deleted"),
        ),
        (
            json!({"error_code": "403025", "message": "Profile is not valid"}),
            Some("403025"),
            "Profile is not valid",
            Some("hdr-1"),
            Some("product profile"),
        ),
    ];
    for (body, code, message, request_id, hint) in cases {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header("x-request-id", "hdr-1")
                    .set_body_json(&body),
            )
            .mount(&server)
            .await;
        let e = client(&server, ready_token())
            .delete_connection("prod", "c1")
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message(), e.request_id()),
            (code, message, request_id),
            "{body}"
        );
        match hint {
            Some(words) => assert!(e.hint().unwrap().contains(words), "{e:?}"),
            None => assert_eq!(e.hint(), None, "{e:?}"),
        }
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

#[tokio::test]
async fn an_ims_scope_refusal_says_where_to_look() {
    let server = MockServer::start().await;
    ims_answers(
        &server,
        ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_scope", "error_description": "scope session is not allowed"}),
        ),
    )
    .await;
    let e = client(&server, credentials(&server))
        .authenticate()
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::Unauthorized, Some("invalid_scope"))
    );
    assert!(e.hint().unwrap().contains("Developer Console"), "{e:?}");
}
