//! The Table key check against wiremock: what it sends and how it reads answers.

use atsprov_model::Secret;
use atsprov_model::sharedkey::TableTarget;
use atsprov_transport::{ErrorKind, TableChecker};
use std::time::Duration;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGFibGUtY2hlY2tz";

fn target(server: &MockServer) -> TableTarget {
    TableTarget {
        account: "acct".into(),
        endpoint: format!("{}/acct", server.uri()).parse().unwrap(),
        key: Secret::new(KEY),
    }
}

fn checker() -> TableChecker {
    TableChecker::new(Duration::from_secs(2), Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn a_signed_request_and_a_200_pass() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/acct/Tables"))
        .and(query_param("$top", "1"))
        .and(header("x-ms-version", "2019-02-02"))
        .and(header_exists("x-ms-date"))
        .and(header("accept", "application/json;odata=nometadata"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"value": []})))
        .expect(1)
        .mount(&server)
        .await;
    checker().check(&target(&server)).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.starts_with("SharedKeyLite acct:"), "{auth}");
    assert!(!auth.contains(KEY));
}

#[tokio::test]
async fn a_refused_key_is_forbidden_with_azures_code_and_no_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ms-error-code", "AuthenticationFailed")
                .insert_header("x-ms-request-id", "req-9")
                .set_body_json(serde_json::json!({"odata.error": {"code": "AuthenticationFailed",
                    "message": {"lang": "en-US", "value": format!("Server failed to authenticate the request. key {KEY}\nRequestId:req-9")}}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = checker().check(&target(&server)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(err.code(), Some("AuthenticationFailed"));
    let text = err.to_string();
    assert!(
        text.contains("the account key was refused") && text.contains("req-9"),
        "{text}"
    );
    assert!(
        !text.contains(KEY) && !format!("{err:?}").contains(KEY),
        "{text}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let err = checker().check(&target(&server)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(503));
}

#[tokio::test]
async fn plain_http_to_a_real_host_is_refused_before_sending() {
    let target = TableTarget {
        account: "acct".into(),
        endpoint: "http://acct.table.core.windows.net".parse().unwrap(),
        key: Secret::new(KEY),
    };
    let err = checker().check(&target).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
