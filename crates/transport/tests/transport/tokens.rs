//! IMS tokens against wiremock on 127.0.0.1: renewal after a 401 or at
//! expiry (single flight), the token request's form, a refused secret, and
//! retries of the token call.

use std::time::Duration;

use atsprov_transport::ErrorKind;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{
    BASE, TOKEN_PATH, client, credentials, first_token_a_then_b, ims_answers, item, page,
    requests_to, token_answer,
};

#[tokio::test]
async fn a_401_renews_the_token_once_and_repeats_the_call() {
    let server = MockServer::start().await;
    first_token_a_then_b(&server).await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-a"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error_code": "401013", "message": "Oauth token is not valid"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-b"))
        .respond_with(page(vec![item("c1", "n")], None))
        .mount(&server)
        .await;
    let client = client(&server, credentials(&server));
    assert_eq!(client.get_connection("prod", "c1").await.unwrap().id, "c1");
    let stats = client.stats();
    assert_eq!(
        (stats.token_requests, stats.requests, stats.retries),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn a_second_401_is_final() {
    let server = MockServer::start().await;
    ims_answers(&server, token_answer("token-a", 86399)).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-request-id", "req-401")
                .set_body_json(
                    json!({"error_code": "401013", "message": "Oauth token is not valid"}),
                ),
        )
        .mount(&server)
        .await;
    let client = client(&server, credentials(&server));
    let e = client.get_connection("prod", "c1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.code(), Some("401013"));
    assert_eq!(e.request_id(), Some("req-401"));
    assert_eq!(
        e.to_string(),
        "read connection `c1` in sandbox `prod`: HTTP 401 401013 Oauth token is not valid (request id req-401)"
    );
    let stats = client.stats();
    assert_eq!((stats.token_requests, stats.requests), (2, 2));
}

/// 100 calls that find the token expired cause one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_of_an_expired_token_is_single_flight() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_answer("expired-at-once", 0))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_answer("token-b", 86399).set_delay(Duration::from_millis(50)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-b"))
        .respond_with(page(vec![item("c1", "n")], None))
        .mount(&server)
        .await;
    let client = client(&server, credentials(&server));
    client.authenticate().await.unwrap();
    assert_eq!(client.stats().token_requests, 1);
    let calls = (0..100).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_connection("prod", "c1").await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    let stats = client.stats();
    assert_eq!((stats.token_requests, stats.requests), (2, 100));
}

/// 100 calls answered 401 with the same old token cause one renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_after_401s_is_single_flight() {
    let server = MockServer::start().await;
    first_token_a_then_b(&server).await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-a"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error_code": "401013", "message": "m"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-b"))
        .respond_with(page(vec![item("c1", "n")], None))
        .mount(&server)
        .await;
    let client = client(&server, credentials(&server));
    client.authenticate().await.unwrap();
    let calls = (0..100).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_connection("prod", "c1").await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(client.stats().token_requests, 2);
}

#[tokio::test]
async fn the_token_request_is_the_documented_form() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=client-id-1"))
        .and(body_string_contains("client_secret=client-secret-1"))
        .and(body_string_contains("scope=openid%2CAdobeID"))
        .respond_with(token_answer("token-a", 86399))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, credentials(&server));
    client.authenticate().await.unwrap();
    client.authenticate().await.unwrap();
    assert_eq!(client.stats().token_requests, 1);
}

#[tokio::test]
async fn a_wrong_client_secret_fails_at_once_and_stays_failed() {
    for status in [400, 401] {
        let server = MockServer::start().await;
        ims_answers(
            &server,
            ResponseTemplate::new(status).set_body_json(
                json!({"error": "invalid_client", "error_description": "invalid client_secret parameter"}),
            ),
        )
        .await;
        let client = client(&server, credentials(&server));
        let e = client.authenticate().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.code(), Some("invalid_client"));
        let text = e.to_string();
        assert!(
            text.contains("client credentials were refused by IMS"),
            "{text}"
        );
        assert!(
            text.contains(&format!("`{}{TOKEN_PATH}`", server.uri())),
            "{text}"
        );
        assert!(!format!("{text} {e:?}").contains("client-secret-1"));
        // Later calls fail the same way without asking IMS again.
        let e = client.list_connections("prod").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(client.stats().token_requests, 1);
        assert_eq!(requests_to(&server, BASE).await, 0);
    }
}

#[tokio::test]
async fn token_requests_are_retried_on_server_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    ims_answers(&server, token_answer("token-a", 86399)).await;
    let client = client(&server, credentials(&server));
    client.authenticate().await.unwrap();
    assert_eq!(client.stats().token_requests, 3);
}

/// A token URL that answers with the API gateway's numbered codes is not
/// IMS (the Flow Service's own address, say): the error names the setting.
#[tokio::test]
async fn a_token_url_that_is_not_ims_is_named() {
    let server = MockServer::start().await;
    ims_answers(
        &server,
        ResponseTemplate::new(401)
            .set_body_json(json!({"error_code": "401013", "message": "Oauth token is not valid"})),
    )
    .await;
    let client = client(&server, credentials(&server));
    let e = client.authenticate().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains("did not answer as IMS does"), "{e}");
    assert!(
        e.hint().is_some_and(|h| h.contains("auth.token_url")),
        "{e}"
    );
}

/// A token the gateway refuses says what to do about it.
#[tokio::test]
async fn a_refused_token_says_what_to_check() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error_code": "401013", "message": "Oauth token is not valid"}),
            ),
        )
        .mount(&server)
        .await;
    let client = client(&server, super::ready_token());
    let e = client.list_connections("prod").await.unwrap_err();
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("access_token") && h.contains("expired")),
        "{e}"
    );
}
