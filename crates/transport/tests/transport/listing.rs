//! Listings against wiremock on 127.0.0.1: every page followed, a looping
//! next link refused, filters by name and by id checked again on our side,
//! and the wait's counts by id (not believed when too large).

use atsprov_model::wire::ATS_CONNECTION_SPEC_ID;
use atsprov_transport::ErrorKind;
use serde_json::json;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{BASE, client, item, ready_token, requests_to};

#[tokio::test]
async fn listing_follows_every_page() {
    let server = MockServer::start().await;
    let other_spec =
        json!({"id": "other", "name": "x", "connectionSpec": {"id": "not-ats"}, "etag": "\"o\""});
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param(
            "property",
            format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}"),
        ))
        .and(query_param("limit", "1000"))
        .and(query_param_is_missing("continuationToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [item("c1", "a"), item("c2", "b")],
            "_links": {"next": {"href": "/connections?continuationToken=p2"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The link carries only the token: the filter and limit are sent again.
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("continuationToken", "p2"))
        .and(query_param(
            "property",
            format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}"),
        ))
        .and(query_param("limit", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [item("c3", "c"), other_spec, item("c2", "b")],
            "_links": {"next": {"href": "/connections?continuationToken=p3"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("continuationToken", "p3"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [item("c4", "d")], "_links": {}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let ids: Vec<String> = client
        .list_connections("prod")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn a_next_link_that_loops_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [], "_links": {"next": {"href": "/connections?continuationToken=same"}}
        })))
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let e = client.list_connections("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert_eq!(requests_to(&server, BASE).await, 2);
}

#[tokio::test]
async fn listing_by_name_filters_on_the_server_and_checks_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [item("c1", "sales-eu"), item("c2", "sales-eu-2"), item("c3", "a,b"), item("c4", "sales-eu")]
        })))
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let found = client
        .list_connections_named("prod", "sales-eu")
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c4"]
    );
    let found = client.list_connections_named("prod", "a,b").await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c3"]
    );

    let requests = server.received_requests().await.unwrap();
    let properties = |r: &Request| -> Vec<String> {
        r.url
            .query_pairs()
            .filter(|(k, _)| k == "property")
            .map(|(_, v)| v.into_owned())
            .collect()
    };
    let spec = format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}");
    assert_eq!(
        properties(&requests[0]),
        [spec.clone(), "name==sales-eu".to_owned()]
    );
    // `,` would mean "any of": that name is matched locally over the full list.
    assert_eq!(properties(&requests[1]), [spec]);
}

#[tokio::test]
async fn listing_by_ids_filters_on_the_server_follows_pages_and_checks_again() {
    let server = MockServer::start().await;
    let by_id = "id==c1,c2,c3";
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", by_id))
        .and(query_param_is_missing("continuationToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [item("c1", "a"), item("stray", "s")],
            "_links": {"next": {"href": "/connections?continuationToken=p2"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The bare link gets the filters again.
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("continuationToken", "p2"))
        .and(query_param("property", by_id))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [item("c3", "c")]})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let found = client
        .list_connections_by_ids("prod", &["c1", "c2", "c3"])
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c3"],
        "what the server sent beyond the ids asked for is dropped"
    );
    let requests = server.received_requests().await.unwrap();
    let properties: Vec<String> = requests[0]
        .url
        .query_pairs()
        .filter(|(k, _)| k == "property")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(
        properties,
        [
            format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}"),
            by_id.to_owned()
        ]
    );
    // Nothing asked for, nothing sent.
    assert!(
        client
            .list_connections_by_ids("prod", &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(requests_to(&server, BASE).await, 2);
}

/// The wait after the writes counts by id: `count=true` with the id filter,
/// no items sent; a count refused, or above the ids asked for (a server
/// that ignored the filter), is not the end: the ids are listed instead.
#[tokio::test]
async fn counting_by_ids_asks_the_server_and_does_not_believe_a_count_too_large() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", "id==c1,c2,c3"))
        .and(query_param("count", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 2})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", "id==c4,c5"))
        .and(query_param("count", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 40})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", "id==c4,c5"))
        .and(query_param_is_missing("count"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [item("c5", "e")]})))
        .expect(1)
        .mount(&server)
        .await;
    // A server that refuses to count this way (400) is asked for the items.
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", "id==c6"))
        .and(query_param("count", "true"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "https://ns.adobe.com/aep/errors/FLOW-1452-400",
            "title": "Invalid parameter",
            "status": 400
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(query_param("property", "id==c6"))
        .and(query_param_is_missing("count"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [item("c6", "f")]})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    assert_eq!(
        client
            .count_connections_by_ids("prod", &["c6"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .count_connections_by_ids("prod", &["c1", "c2", "c3"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client
            .count_connections_by_ids("prod", &["c4", "c5"])
            .await
            .unwrap(),
        1
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.query_pairs().any(|(k, _)| k == "limit")
                || !r.url.query_pairs().any(|(k, _)| k == "count")),
        "`count` and `limit` together are refused by the API"
    );
    // Nothing asked for, nothing sent.
    assert_eq!(
        client.count_connections_by_ids("prod", &[]).await.unwrap(),
        0
    );
    assert_eq!(requests_to(&server, BASE).await, 5);
}

/// A listing answered 404 without the sandbox's own code is the wrong
/// address: the hint names `platform.endpoint`; a missing sandbox keeps its own.
#[tokio::test]
async fn a_listing_at_the_wrong_address_names_the_endpoint_setting() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(wiremock::matchers::header("x-sandbox-name", "prod"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error_code": "404010", "message": "Route not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BASE}/connections")))
        .and(wiremock::matchers::header("x-sandbox-name", "ghost"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "type": "https://ns.adobe.com/aep/errors/FLOW-2100-404",
            "title": "Sandbox not found", "status": 404
        })))
        .mount(&server)
        .await;
    let client = client(&server, ready_token());
    let e = client.list_connections("prod").await.unwrap_err();
    assert!(
        e.hint().is_some_and(|h| h.contains("platform.endpoint")),
        "{e}"
    );
    let e = client.list_connections("ghost").await.unwrap_err();
    assert!(
        !e.hint().is_some_and(|h| h.contains("platform.endpoint")),
        "{e}"
    );
}
