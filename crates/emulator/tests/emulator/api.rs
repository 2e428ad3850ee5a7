//! Every endpoint and every request error.

use std::time::Duration;

use atsprov_emulator::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn token_endpoint_answers_and_refuses_like_ims() {
    let emu = atsprov_emulator::start(Config {
        client_credentials: Some(("the-id".into(), "the-secret".into())),
        token_ttl: Duration::from_secs(3600),
        ..Config::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post =
        |form: Vec<(&'static str, &'static str)>| http.post(emu.token_url()).form(&form).send();
    let ok = post(vec![
        ("grant_type", "client_credentials"),
        ("client_id", "the-id"),
        ("client_secret", "the-secret"),
        ("scope", "openid"),
    ])
    .await
    .unwrap();
    let (status, body) = parts(ok).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);

    for (form, want_status, want_error) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "the-id"),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "other"),
                ("client_secret", "the-secret"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![("client_id", "the-id"), ("client_secret", "the-secret")],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_secret", "the-secret"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "the-id"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "the-id"),
                ("client_secret", "the-secret"),
            ],
            400,
            "unsupported_grant_type",
        ),
    ] {
        let (status, body) = parts(post(form.clone()).await.unwrap()).await;
        assert_eq!(status, want_status, "{form:?}");
        assert_eq!(body["error"], want_error, "{form:?}");
        assert!(body["error_description"].is_string());
        assert!(!body.to_string().contains("the-secret"));
    }
    let res = http.get(emu.token_url()).send().await.unwrap();
    assert_eq!(res.status(), 405);
    // Trailing slash works the same.
    let res = http
        .post(format!("{}/", emu.token_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "the-id"),
            ("client_secret", "the-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn any_pair_gets_a_token_without_configured_credentials() {
    let env = Env::default().await;
    let other = token(&env.http, &env.emu, "someone", "anything").await;
    assert_ne!(other, env.token);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn connection_lifecycle() {
    let env = Env::default().await;
    let res = env
        .req(Method::POST, "/connections")
        .json(&new_connection("alpha"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let etag = body["etag"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&format!("/connections/{id}")));
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );

    let item = env.get(&id).await;
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["name"], "alpha");
    assert_eq!(item["description"], "about alpha");
    assert_eq!(item["etag"], etag.as_str());
    assert_eq!(item["version"], etag.as_str());
    assert_eq!(item["state"], "enabled");
    assert_eq!(
        item["connectionSpec"],
        json!({"id": SPEC, "version": "1.0"})
    );
    assert_eq!(item["sandboxName"], "prod");
    assert_eq!(item["imsOrgId"], ORG);
    assert_eq!(item["createdClient"], API_KEY);
    assert_eq!(item["updatedClient"], API_KEY);
    assert!(item["createdBy"].as_str().unwrap().contains(API_KEY));
    assert!(item["sandboxId"].as_str().unwrap().len() >= 32);
    let created_at = item["createdAt"].as_i64().unwrap();
    assert!(created_at > 1_600_000_000_000, "epoch ms");
    assert_eq!(item["updatedAt"], created_at);
    assert_eq!(item["auth"]["specName"], AUTH_SPEC);
    // Masked: the account key never comes back.
    assert_eq!(
        item["auth"]["params"]["connectionString"],
        "DefaultEndpointsProtocol=https;AccountName=alpha;AccountKey=***;EndpointSuffix=core.windows.net"
    );
    assert!(!item.to_string().contains(KEY));

    let res = env
        .req(Method::GET, &format!("/connections/{id}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await, (200, json!({"result": true})));

    // Patch with the etag, op names in any case.
    let res = env
        .req(Method::PATCH, &format!("/connections/{id}"))
        .header("if-match", &etag)
        .json(&json!([
            {"op": "REPLACE", "path": "/name", "value": "beta"},
            {"op": "Add", "path": "/description", "value": "new text"},
            {"op": "replace", "path": "/auth/params", "value": {"connectionString": "AccountName=beta;AccountKey=not base64!"}},
        ]))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    let etag2 = body["etag"].as_str().unwrap().to_owned();
    assert_ne!(etag2, etag);
    let item = env.get(&id).await;
    assert_eq!(item["name"], "beta");
    assert_eq!(item["description"], "new text");
    assert_eq!(item["etag"], etag2.as_str());
    assert_eq!(item["createdAt"], created_at);
    assert!(item["updatedAt"].as_i64().unwrap() >= created_at);
    assert_eq!(
        item["auth"]["params"]["connectionString"],
        "AccountName=beta;AccountKey=***"
    );
    // The stored key is not base64: the test fails.
    let res = env
        .req(Method::GET, &format!("/connections/{id}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await, (200, json!({"result": false})));

    // Stale etag, missing If-Match, immutable spec, bad path.
    let patch = |etag: Option<&str>, body: Value| {
        let mut req = env
            .req(Method::PATCH, &format!("/connections/{id}"))
            .json(&body);
        if let Some(etag) = etag {
            req = req.header("if-match", etag);
        }
        req.send()
    };
    let rename = json!([{"op": "replace", "path": "/name", "value": "gamma"}]);
    assert_flow_error(
        patch(Some(&etag), rename.clone()).await.unwrap(),
        "1404-412",
    )
    .await;
    assert_flow_error(patch(None, rename.clone()).await.unwrap(), "1403-400").await;
    let refused = [
        (
            json!([{"op": "replace", "path": "/connectionSpec/id", "value": "x"}]),
            "1414-400",
        ),
        (
            json!([{"op": "replace", "path": "/state", "value": "disabled"}]),
            "1455-400",
        ),
        (
            json!([{"op": "move", "path": "/name", "value": "x"}]),
            "1402-400",
        ),
        (
            json!({"op": "replace", "path": "/name", "value": "x"}),
            "1402-400",
        ),
        (
            json!([{"op": "replace", "path": "/auth/params", "value": {"connectionString": "AccountName=x"}}]),
            "1408-400",
        ),
    ];
    for (body, code) in refused {
        assert_flow_error(patch(Some(&etag2), body).await.unwrap(), code).await;
    }
    // Refused patches changed nothing.
    assert_eq!(env.get(&id).await["etag"], etag2.as_str());

    // Delete: 204 with no body, then 404s.
    let res = env
        .req(Method::DELETE, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    for method in [Method::GET, Method::DELETE] {
        let res = env
            .req(method, &format!("/connections/{id}"))
            .send()
            .await
            .unwrap();
        assert_flow_error(res, "1101-404").await;
    }
    let res = env
        .req(Method::GET, &format!("/connections/{id}/test"))
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1101-404").await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn trailing_slashes_work_the_same() {
    let env = Env::default().await;
    let res = env
        .req(Method::POST, "/connections/")
        .json(&new_connection("slash"))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(res).await;
    assert_eq!(status, 201);
    let id = body["id"].as_str().unwrap().to_owned();
    let etag = body["etag"].as_str().unwrap().to_owned();
    let (status, body) = parts(env.req(Method::GET, "/connections/").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = parts(
        env.req(Method::GET, &format!("/connections/{id}/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["items"][0]["id"].clone()), (200, json!(id)));
    let (status, _) = parts(
        env.req(Method::GET, &format!("/connections/{id}/test/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let res = env
        .req(Method::PATCH, &format!("/connections/{id}/"))
        .header("if-match", &etag)
        .json(&json!([{"op": "replace", "path": "/description", "value": "d"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = env
        .req(Method::DELETE, &format!("/connections/{id}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn header_checks_answer_with_adobe_codes() {
    let env = Env::start(Config {
        sandboxes: Some(vec!["prod".into(), "dev".into()]),
        ..Config::default()
    })
    .await;
    let url = env.url("/connections");
    let all = |skip: &str, auth: Option<String>| {
        let mut req = env.http.get(&url);
        for (name, value) in [
            (
                "authorization",
                auth.unwrap_or_else(|| format!("Bearer {}", env.token)),
            ),
            ("x-api-key", API_KEY.to_owned()),
            ("x-gw-ims-org-id", ORG.to_owned()),
            ("x-sandbox-name", "prod".to_owned()),
        ] {
            if name != skip {
                req = req.header(name, value);
            }
        }
        req.send()
    };
    assert_gateway_error(all("authorization", None).await.unwrap(), 401, "401013").await;
    for bad in [
        "Basic abc",
        "Bearer",
        "Bearer ",
        "Bearer not-a-token-we-issued",
        "token",
    ] {
        assert_gateway_error(all("", Some(bad.to_owned())).await.unwrap(), 401, "401013").await;
    }
    assert_gateway_error(all("x-api-key", None).await.unwrap(), 403, "403000").await;
    assert_gateway_error(all("x-gw-ims-org-id", None).await.unwrap(), 400, "400003").await;
    assert_flow_error(all("x-sandbox-name", None).await.unwrap(), "2105-400").await;
    let res = env
        .req_in(Method::GET, "/connections", "stage")
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "2100-404").await;
    let res = env
        .req_in(Method::GET, "/connections", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    env.emu.shutdown().await;

    // Without a list, any lowercase name exists and others do not.
    let env = Env::default().await;
    for (sandbox, status) in [("dev-2", 200), ("Prod", 404), ("prod sandbox", 404)] {
        let res = env
            .req_in(Method::GET, "/connections", sandbox)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{sandbox}");
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn api_key_must_match_the_configured_client() {
    let env = Env::start(Config {
        client_credentials: Some((API_KEY.into(), "s3cret".into())),
        ..Config::default()
    })
    .await;
    let res = env
        .http
        .get(env.url("/connections"))
        .header("authorization", format!("Bearer {}", env.token))
        .header("x-api-key", "someone-else")
        .header("x-gw-ims-org-id", ORG)
        .header("x-sandbox-name", "prod")
        .send()
        .await
        .unwrap();
    assert_gateway_error(res, 403, "403003").await;
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_eq!(res.status(), 200);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_get_401013() {
    // A TTL of zero: the token is expired the moment it is issued, whatever the clock does.
    let env = Env::start(Config {
        token_ttl: Duration::ZERO,
        ..Config::default()
    })
    .await;
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_gateway_error(res, 401, "401013").await;
    // Expired tokens stay refused.
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_gateway_error(res, 401, "401013").await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn tokens_work_within_their_ttl() {
    // The other side of the TTL: a long-lived token is accepted, call after call.
    let env = Env::start(Config {
        token_ttl: Duration::from_secs(3600),
        ..Config::default()
    })
    .await;
    for _ in 0..3 {
        let res = env.req(Method::GET, "/connections").send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn nested_and_extra_auth_params_never_come_back() {
    let env = Env::default().await;
    let secrets = [
        "nested-secret-1",
        "extra-secret-2",
        "nested-secret-3",
        "987654321",
    ];
    let params = |account: &str| {
        json!({
            "connectionString": connection_string(account),
            "x": {"secret": "nested-secret-1", "deeper": {"list": ["nested-secret-3"]}},
            "extra": "extra-secret-2",
            "pin": 987654321,
        })
    };
    let mut body = new_connection("alpha");
    body["auth"]["params"] = params("alpha");
    let res = env
        .req(Method::POST, "/connections")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, created) = parts(res).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let etag = created["etag"].as_str().unwrap().to_owned();
    let shown = |item: &Value| {
        let text = item.to_string();
        for secret in secrets.iter().chain([&KEY]) {
            assert!(!text.contains(secret), "{secret} came back: {text}");
        }
    };
    shown(&created);
    let item = env.get(&id).await;
    shown(&item);
    assert_eq!(
        item["auth"]["params"],
        json!({
            "connectionString": "DefaultEndpointsProtocol=https;AccountName=alpha;AccountKey=***;EndpointSuffix=core.windows.net",
            "x": "***", "extra": "***", "pin": "***",
        })
    );

    let res = env
        .req(Method::PATCH, &format!("/connections/{id}"))
        .header("if-match", &etag)
        .json(&json!([{"op": "replace", "path": "/auth/params", "value": params("beta")}]))
        .send()
        .await
        .unwrap();
    let (status, patched) = parts(res).await;
    assert_eq!(status, 200, "{patched}");
    shown(&patched);
    let item = env.get(&id).await;
    shown(&item);
    assert_eq!(item["auth"]["params"]["x"], "***");
    assert_eq!(
        item["auth"]["params"]["connectionString"],
        "DefaultEndpointsProtocol=https;AccountName=beta;AccountKey=***;EndpointSuffix=core.windows.net"
    );
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    let (status, list) = parts(res).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    shown(&list);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_400_with_the_right_code() {
    let env = Env::default().await;
    let post_raw = |body: Vec<u8>| {
        env.req(Method::POST, "/connections")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_flow_error(post_raw(b"{not json".to_vec()).await.unwrap(), "1402-400").await;
    assert_flow_error(post_raw(b"".to_vec()).await.unwrap(), "1405-400").await;
    assert_flow_error(
        post_raw(vec![b'"', 0xff, 0xfe, b'"']).await.unwrap(),
        "1402-400",
    )
    .await;
    assert_flow_error(post_raw(b"[1,2]".to_vec()).await.unwrap(), "1402-400").await;

    let valid = new_connection("x");
    let without = |path: &[&str]| {
        let mut body = valid.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut body;
        for p in parents {
            at = &mut at[*p];
        }
        at.as_object_mut().unwrap().remove(*last);
        body
    };
    let with = |path: &[&str], value: Value| {
        let mut body = valid.clone();
        let mut at = &mut body;
        for p in path {
            at = &mut at[*p];
        }
        *at = value;
        body
    };
    for (body, code) in [
        (without(&["name"]), "1406-400"),
        (with(&["name"], json!("  ")), "1406-400"),
        (with(&["name"], json!(5)), "1402-400"),
        (without(&["auth"]), "1406-400"),
        (without(&["auth", "specName"]), "1406-400"),
        (without(&["auth", "params"]), "1406-400"),
        (without(&["connectionSpec"]), "1406-400"),
        (without(&["connectionSpec", "id"]), "1406-400"),
        (
            with(
                &["connectionSpec", "id"],
                json!("00000000-0000-0000-0000-000000000000"),
            ),
            "1413-400",
        ),
        (
            with(&["connectionSpec", "version"], json!("2.0")),
            "1413-400",
        ),
        (
            with(&["auth", "specName"], json!("Basic Authentication")),
            "1415-400",
        ),
        (
            with(&["auth", "params", "connectionString"], json!("garbage")),
            "1408-400",
        ),
        (
            with(
                &["auth", "params", "connectionString"],
                json!("AccountName=a"),
            ),
            "1408-400",
        ),
        (
            with(
                &["auth", "params", "connectionString"],
                json!("AccountKey=a2V5"),
            ),
            "1408-400",
        ),
    ] {
        let res = env
            .req(Method::POST, "/connections")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_flow_error(res, code).await;
    }
    // Version omitted means the latest.
    let res = env
        .req(Method::POST, "/connections")
        .json(&without(&["connectionSpec", "version"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Over 1 MiB: 413, with or without a declared length.
    let huge = vec![b' '; 2 * 1024 * 1024];
    let res = post_raw(huge.clone()).await.unwrap();
    assert_flow_error(res, "1412-413").await;
    // A chunked upload with no declared length, over raw TCP.
    let status = chunked_upload(&env, 2 * 1024 * 1024).await;
    assert_eq!(status, "413");
    // Nothing bad was stored.
    let (_, body) = parts(
        env.req(Method::GET, "/connections?count=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body, json!({"count": 1}));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn odd_paths_and_methods_get_4xx() {
    let env = Env::default().await;
    for path in [
        "/connections/a/b/c",
        "/connectionSpecs",
        "/",
        "//connections",
        "/connections/x/explore",
    ] {
        let res = env.req(Method::GET, path).send().await.unwrap();
        assert_flow_error(res, "1101-404").await;
    }
    for path in [
        "/nope",
        "/data/foundation/flowservicex",
        "/%ff%fe",
        "/ims/token/v1",
    ] {
        let res = env
            .http
            .get(format!("http://{}{path}", env.emu.addr()))
            .send()
            .await
            .unwrap();
        assert_gateway_error(res, 404, "404010").await;
    }
    let res = env.req(Method::PUT, "/connections").send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET, POST");
    assert_flow_error(res, "1105-405").await;
    let res = env
        .req(Method::POST, "/connections/abc")
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1105-405").await;
    let res = env
        .req(Method::GET, "/connections/%00%ff")
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1101-404").await;
    let res = env
        .req(Method::PATCH, "/connections/missing")
        .header("if-match", "\"x\"")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1402-400").await;
    let res = env
        .req(Method::PATCH, "/connections/missing")
        .header("if-match", "\"x\"")
        .json(&json!([{"op": "replace", "path": "/name", "value": "n"}]))
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1101-404").await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn organizations_and_sandboxes_are_isolated() {
    let mut env = Env::default().await;
    let (id, _) = env.create("shared-name").await;
    for (org, sandbox) in [("OTHER@AdobeOrg", "prod"), (ORG, "dev")] {
        env.org = org.to_owned();
        env.sandbox = sandbox.to_owned();
        let res = env
            .req(Method::GET, &format!("/connections/{id}"))
            .send()
            .await
            .unwrap();
        assert_flow_error(res, "1101-404").await;
        let res = env
            .req(Method::DELETE, &format!("/connections/{id}"))
            .send()
            .await
            .unwrap();
        assert_flow_error(res, "1101-404").await;
        let (_, body) = parts(env.req(Method::GET, "/connections").send().await.unwrap()).await;
        assert_eq!(body["items"], json!([]));
        // The same name may exist again here.
        env.create("shared-name").await;
    }
    env.org = ORG.to_owned();
    env.sandbox = "prod".to_owned();
    let item = env.get(&id).await;
    assert_eq!(item["name"], "shared-name");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn stats_count_by_method_route_and_status() {
    let env = Env::default().await;
    let (id, _) = env.create("one").await;
    env.get(&id).await;
    let res = env
        .req(Method::GET, "/connections/missing")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = env
        .req(Method::DELETE, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let stats = env.stats().await;
    assert_eq!(stats["requests"], 5, "{stats}");
    assert_eq!(
        stats["by_method"],
        json!({"DELETE": 1, "GET": 2, "POST": 2})
    );
    assert_eq!(
        stats["by_route"],
        json!({"token": 1, "list": 0, "get": 2, "create": 1, "patch": 0, "delete": 1, "test": 0, "table": 0, "other": 0})
    );
    assert_eq!(
        stats["by_status"],
        json!({"200": 2, "201": 1, "204": 1, "404": 1})
    );
    assert_eq!(stats["by_route_status"]["get"], json!({"200": 1, "404": 1}));
    assert_eq!(stats["writes"], 2);
    assert_eq!(stats["rate_limited"], 0);
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["connections"], 0);
    // Reading the stats does not count.
    assert_eq!(env.stats().await["requests"], 5);
    env.emu.shutdown().await;
}

#[test]
fn config_debug_hides_the_client_secret() {
    let config = Config {
        client_credentials: Some(("id".into(), "very-secret-value".into())),
        ..Config::default()
    };
    let text = format!("{config:?}");
    assert!(!text.contains("very-secret-value"), "{text}");
    assert!(text.contains("\"id\""));
}

#[test]
fn config_rejects_out_of_range_values() {
    use atsprov_emulator::ConfigError;
    let check = |config: Config| config.validate();
    assert_eq!(check(Config::default()), Ok(()));
    assert!(matches!(
        check(Config {
            fail_rate: 1.5,
            ..Config::default()
        }),
        Err(ConfigError::Rate {
            name: "fail_rate",
            ..
        })
    ));
    assert!(matches!(
        check(Config {
            ambiguous_rate: -0.1,
            ..Config::default()
        }),
        Err(ConfigError::Rate {
            name: "ambiguous_rate",
            ..
        })
    ));
    assert!(matches!(
        check(Config {
            fail_rate: f64::NAN,
            ..Config::default()
        }),
        Err(ConfigError::Rate { .. })
    ));
    assert_eq!(
        check(Config {
            page_size: 0,
            ..Config::default()
        }),
        Err(ConfigError::PageSize(0))
    );
    assert_eq!(
        check(Config {
            page_size: 1001,
            ..Config::default()
        }),
        Err(ConfigError::PageSize(1001))
    );
    assert_eq!(
        check(Config {
            rate_limit: Some(0),
            ..Config::default()
        }),
        Err(ConfigError::RateLimit)
    );
}

/// Posts `size` bytes chunked over raw TCP; returns the status code of the answer.
async fn chunked_upload(env: &Env, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(env.emu.addr())
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /data/foundation/flowservice/connections HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-api-key: {API_KEY}\r\nx-gw-ims-org-id: {ORG}\r\nx-sandbox-name: prod\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        env.token
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..size / chunk.len() {
            write
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            write.write_all(&chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(write)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = read.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    // The writer may fail once the server stops reading; either way it ends.
    let _ = writer.await;
    String::from_utf8_lossy(&answer[9..12]).into_owned()
}
