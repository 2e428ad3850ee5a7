//! What the real service refuses and the emulator must refuse too: Adobe's error catalog,
//! RFC 6902 PATCH, connection states, scopes, overload, listing lag and
//! `/_emulator/connections`.

use std::time::Duration;

use atsprov_emulator::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn a_connection_made_without_description_has_none_and_patch_follows_rfc_6902() {
    let env = Env::default().await;
    let mut body = new_connection("plain");
    body.as_object_mut().unwrap().remove("description");
    let res = env
        .req(Method::POST, "/connections")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, created) = parts(res).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let item = env.get(&id).await;
    assert!(item.get("description").is_none(), "{item}");

    // Each step against the connection as the previous step left it.
    let steps: [(Value, u16, Option<&str>, Option<&str>); 6] = [
        (
            json!([{"op": "replace", "path": "/description", "value": "x"}]),
            400,
            Some("1455-400"),
            None,
        ),
        (
            json!([{"op": "remove", "path": "/description"}]),
            400,
            Some("1455-400"),
            None,
        ),
        (
            json!([{"op": "add", "path": "/description", "value": "first"}]),
            200,
            None,
            Some("first"),
        ),
        (
            json!([{"op": "add", "path": "/description", "value": "second"}]),
            200,
            None,
            Some("second"),
        ),
        (
            json!([{"op": "replace", "path": "/description", "value": "third"}]),
            200,
            None,
            Some("third"),
        ),
        (
            json!([{"op": "remove", "path": "/description"}]),
            200,
            None,
            None,
        ),
    ];
    for (ops, status, code, after) in steps {
        assert_answer(env.patch(&id, ops.clone()).await, status, code).await;
        let item = env.get(&id).await;
        assert_eq!(
            item.get("description").and_then(Value::as_str),
            after,
            "{ops}"
        );
    }
    // A refused op in a batch applies none of it.
    let res = env
        .patch(
            &id,
            json!([
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "replace", "path": "/description", "value": "x"},
            ]),
        )
        .await;
    assert_flow_error(res, "1455-400").await;
    assert_eq!(env.get(&id).await["name"], "plain");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn states_and_dataflows_refuse_patch_and_delete() {
    let env = Env::default().await;
    // state, in use, then PATCH's and DELETE's answers (status, code).
    type Answer = (u16, Option<&'static str>);
    let table: [(&str, bool, Answer, Answer); 5] = [
        (
            "delete-finalizing",
            false,
            (400, Some("1457-400")),
            (400, Some("1458-400")),
        ),
        (
            "failed",
            false,
            (400, Some("1416-400")),
            (400, Some("1416-400")),
        ),
        ("enabled", true, (200, None), (400, Some("1418-400"))),
        ("disabled", false, (200, None), (204, None)),
        ("initializing", false, (200, None), (204, None)),
    ];
    for (state, in_use, (patch_status, patch_code), (delete_status, delete_code)) in table {
        let id = env
            .seed(json!({"sandbox": "prod", "name": state, "state": state, "in_use": in_use}))
            .await;
        let item = env.get(&id).await;
        assert_eq!(item["state"], state);
        let res = env
            .patch(
                &id,
                json!([{"op": "add", "path": "/description", "value": "d"}]),
            )
            .await;
        assert_answer(res, patch_status, patch_code).await;
        assert_answer(env.delete(&id).await, delete_status, delete_code).await;
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn seeded_connections_look_made_elsewhere() {
    let env = Env::default().await;
    let other_spec = "00000000-1111-2222-3333-444444444444";
    let ui = env
        .seed(json!({"sandbox": "prod", "name": "from-ui"}))
        .await;
    let foreign = env
        .seed(json!({"sandbox": "prod", "name": "other-kind", "spec": other_spec, "description": "d"}))
        .await;
    let item = env.get(&ui).await;
    assert!(item.get("description").is_none(), "{item}");
    assert_eq!(item["state"], "enabled");
    assert_eq!(item["createdClient"], "exc_app");
    assert_eq!(item["connectionSpec"]["id"], SPEC);
    assert!(
        item["auth"]["params"]["connectionString"]
            .as_str()
            .unwrap()
            .contains("AccountKey=***")
    );
    assert_eq!(env.get(&foreign).await["connectionSpec"]["id"], other_spec);
    let res = env
        .req(
            Method::GET,
            &format!("/connections?property=connectionSpec.id=={SPEC}"),
        )
        .send()
        .await
        .unwrap();
    let (_, body) = parts(res).await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ui.as_str()]);
    assert_eq!(env.stats().await["connections"], 2);

    let url = format!("http://{}/_emulator/connections", env.emu.addr());
    for (body, with_org) in [
        (json!({"name": "n"}), true),
        (json!({"sandbox": "prod"}), true),
        (
            json!({"sandbox": "prod", "name": "n", "colour": "red"}),
            true,
        ),
        (
            json!({"sandbox": "prod", "name": "n", "in_use": "yes"}),
            true,
        ),
        (json!({"sandbox": "Prod!", "name": "n"}), true),
        (json!({"sandbox": "prod", "name": "n"}), false),
        (json!(["sandbox"]), true),
    ] {
        let mut req = env.http.post(&url).json(&body);
        if with_org {
            req = req.header("x-gw-ims-org-id", ORG);
        }
        assert_flow_error(req.send().await.unwrap(), "1402-400").await;
    }
    let res = env.http.get(&url).send().await.unwrap();
    assert_flow_error(res, "1105-405").await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn no_patch_answers_1445() {
    let env = Env::start(Config {
        patch_enabled: false,
        ..Config::default()
    })
    .await;
    let (id, etag) = env.create("p").await;
    let res = env
        .req(Method::PATCH, &format!("/connections/{id}"))
        .header("if-match", etag)
        .json(&json!([{"op": "add", "path": "/description", "value": "d"}]))
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1445-400").await;
    assert_eq!(env.get(&id).await["description"], "about p");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn required_scopes_are_enforced_by_ims_and_the_gateway() {
    let full = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session";
    let emu = atsprov_emulator::start(Config {
        required_scopes: Some(vec!["openid".into(), "AdobeID".into()]),
        ..Config::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let ask = |scope: &'static str| {
        http.post(emu.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", API_KEY),
                ("client_secret", "s"),
                ("scope", scope),
            ])
            .send()
    };
    for scope in ["openid", "", "AdobeID,read_organizations"] {
        let (status, body) = parts(ask(scope).await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{scope}"
        );
    }
    let call = |token: String| {
        http.get(format!("{}/connections", emu.flow_url()))
            .header("authorization", format!("Bearer {token}"))
            .header("x-api-key", API_KEY)
            .header("x-gw-ims-org-id", ORG)
            .header("x-sandbox-name", "prod")
            .send()
    };
    for (scope, status, code) in [
        ("openid,AdobeID", 403, Some("403025")),
        (
            "openid AdobeID additional_info.projectedProductContext",
            200,
            None,
        ),
        (full, 200, None),
    ] {
        let (got, body) = parts(ask(scope).await.unwrap()).await;
        assert_eq!(got, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let res = call(token).await.unwrap();
        match code {
            Some(code) => assert_gateway_error(res, status, code).await,
            None => assert_eq!(res.status(), status),
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn overload_answers_1102_500_without_retry_after() {
    let env = Env::start(Config {
        rate_limit: Some(2),
        overload_500: true,
        ..Config::default()
    })
    .await;
    // Counted, not timed: far more calls than a burst of 2 and any refill in between.
    let mut overloaded = 0;
    for _ in 0..200 {
        let res = env.req(Method::GET, "/connections").send().await.unwrap();
        if res.status() == 500 {
            assert!(res.headers().get("retry-after").is_none());
            assert_flow_error(res, "1102-500").await;
            overloaded += 1;
        } else {
            assert_eq!(res.status(), 200);
        }
    }
    assert!(overloaded > 0);
    let stats = env.stats().await;
    assert_eq!(stats["overloaded"], overloaded, "{stats}");
    assert_eq!(stats["rate_limited"], 0);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn listings_lag_new_connections_but_reads_by_id_do_not() {
    let env = Env::start(Config {
        list_lag: Duration::from_secs(3600),
        ..Config::default()
    })
    .await;
    let (id, etag) = env.create("late").await;
    assert!(env.listed_names().await.is_empty());
    let res = env
        .req(Method::GET, "/connections?count=true")
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.1, json!({"count": 0}));
    let res = env
        .req(Method::GET, "/connections?property=name==late")
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.1["items"], json!([]));
    // A listing filtered by id lags the same way (it is a listing).
    let res = env
        .req(
            Method::GET,
            &format!("/connections?property=id=={id},other"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.1["items"], json!([]));
    // So does a count by id.
    let res = env
        .req(
            Method::GET,
            &format!("/connections?property=id=={id},other&count=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.1, json!({"count": 0}));
    // By id it is there at once, and writable.
    assert_eq!(env.get(&id).await["name"], "late");
    let res = env
        .req(Method::PATCH, &format!("/connections/{id}"))
        .header("if-match", etag)
        .json(&json!([{"op": "replace", "path": "/description", "value": "d"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Connections stored as made elsewhere long ago show at once.
    env.seed(json!({"sandbox": "prod", "name": "old"})).await;
    assert_eq!(env.listed_names().await, ["old"]);
    assert_eq!(env.delete(&id).await.status(), 204);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn bodies_need_json_content_type_and_content() {
    let env = Env::default().await;
    let body = serde_json::to_vec(&new_connection("ct")).unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = env.req(Method::POST, "/connections").body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, answer) = parts(req.send().await.unwrap()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["title"], "BadRequestError");
        assert_eq!(answer["detail"], "A valid content-type must be specified");
        assert!(answer.get("errorMessage").is_none(), "{answer}");
    }
    let res = env
        .req(Method::POST, "/connections")
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    for empty in ["", "  \n"] {
        let res = env
            .req(Method::POST, "/connections")
            .header("content-type", "application/json")
            .body(empty)
            .send()
            .await
            .unwrap();
        assert_flow_error(res, "1405-400").await;
    }
    env.emu.shutdown().await;
}
