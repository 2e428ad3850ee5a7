//! `GET /connections`: filters, order, count, limits and stable paging under concurrent writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atsprov_emulator::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

async fn list(env: &Env, query: &str) -> (u16, Value) {
    parts(
        env.req(Method::GET, &format!("/connections{query}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_order_and_count() {
    let env = Env::default().await;
    let mut ids = HashMap::new();
    for name in ["delta", "alpha", "charlie", "bravo"] {
        ids.insert(name, env.create(name).await.0);
    }
    let (status, body) = list(&env, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&body),
        ["delta", "alpha", "charlie", "bravo"],
        "creation order by default"
    );
    assert!(body.get("_links").is_none());
    assert!(!body.to_string().contains(KEY), "list masks secrets");

    for (query, want) in [
        ("?property=name==alpha", vec!["alpha"]),
        ("?property=name%3D%3Dalpha,bravo", vec!["alpha", "bravo"]),
        (
            "?property=name==alpha,bravo&property=name==bravo,charlie",
            vec!["bravo"],
        ),
        ("?property=name!=alpha", vec!["delta", "charlie", "bravo"]),
        ("?property=description==about%20charlie", vec!["charlie"]),
        (
            &format!("?property=connectionSpec.id=={SPEC}&property=state==enabled&orderby=name"),
            vec!["alpha", "bravo", "charlie", "delta"],
        ),
        ("?property=state==disabled", vec![]),
        (
            &format!("?property=id=={}", ids["charlie"]),
            vec!["charlie"],
        ),
        (
            &format!(
                "?property=id=={},{},no-such-id",
                ids["charlie"], ids["alpha"]
            ),
            vec!["alpha", "charlie"],
        ),
        (
            &format!(
                "?property=id%3D%3D{}%2C{}&property=name!=alpha",
                ids["charlie"], ids["alpha"]
            ),
            vec!["charlie"],
        ),
        (
            "?property=createdAt>0&orderby=-name",
            vec!["delta", "charlie", "bravo", "alpha"],
        ),
        (
            "?orderby=createdAt",
            vec!["delta", "alpha", "charlie", "bravo"],
        ),
        (
            "?orderby=-createdAt",
            vec!["bravo", "charlie", "alpha", "delta"],
        ),
    ] {
        let (status, body) = list(&env, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(names(&body), want, "{query}");
    }
    assert_eq!(list(&env, "?count=true").await, (200, json!({"count": 4})));
    assert_eq!(
        list(&env, "?count=true&property=name==alpha,bravo").await,
        (200, json!({"count": 2}))
    );
    assert_eq!(list(&env, "?count=false&limit=1").await.0, 200);

    for (query, code) in [
        ("?count=true&limit=10", "1401-400"),
        ("?limit=1001", "1452-400"),
        ("?limit=0", "1452-400"),
        ("?limit=ten", "1452-400"),
        ("?count=maybe", "1452-400"),
        ("?property=name", "1450-400"),
        ("?property=secret==x", "1449-400"),
        ("?property=name>a", "1450-400"),
        ("?property=createdAt>=soon", "1452-400"),
        ("?orderby=auth", "1452-400"),
        ("?continuationToken=garbage", "1452-400"),
        ("?start=0", "1451-400"),
        ("?limit=5&n_results=10", "1451-400"),
    ] {
        let res = env
            .req(Method::GET, &format!("/connections{query}"))
            .send()
            .await
            .unwrap();
        assert_flow_error(res, code).await;
    }
    assert_eq!(list(&env, "?limit=1000").await.0, 200);
    // A request line longer than a gateway takes is refused before anything else.
    let long = format!(
        "?property=id=={}",
        "x".repeat(atsprov_emulator::MAX_URI_BYTES)
    );
    let res = env
        .req(Method::GET, &format!("/connections{long}"))
        .send()
        .await
        .unwrap();
    assert_gateway_error(res, 414, "414000").await;
    let stats = env.stats().await;
    assert_eq!(stats["lists_by_id"], 3, "{stats}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn pages_follow_next_links_and_keep_filters() {
    let env = Env::start(Config {
        page_size: 3,
        ..Config::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(env.create(&format!("item-{i:02}")).await.0);
    }
    env.create("other").await;
    // A list of ids (out of order, one twice, one unknown) pages in creation order.
    let asked = [&ids[7], &ids[1], &ids[4], &ids[1], &ids[9], &ids[0]]
        .map(String::as_str)
        .join(",");
    let mut query = format!("?limit=2&property=id=={asked},unknown");
    let mut seen = Vec::new();
    loop {
        let (status, body) = list(&env, &query).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(names(&body));
        match body["_links"]["next"]["href"].as_str() {
            Some(href) => query = href.strip_prefix("/connections").unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["item-00", "item-01", "item-04", "item-07", "item-09"]
    );
    // Counted, the same list is the same five (the id named twice once).
    assert_eq!(
        list(&env, &format!("?count=true&property=id=={asked},unknown")).await,
        (200, json!({"count": 5}))
    );
    assert_eq!(
        list(
            &env,
            &format!("?count=true&property=id=={asked}&property=name==item-01")
        )
        .await,
        (200, json!({"count": 1}))
    );
    // Default page size, then an explicit limit and a filter kept across pages.
    let (_, body) = list(&env, "").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    let href = body["_links"]["next"]["href"].as_str().unwrap();
    assert!(
        href.starts_with("/connections?continuationToken="),
        "{href}"
    );

    for order in ["", "&orderby=-name", "&orderby=name", "&orderby=-createdAt"] {
        let mut seen = Vec::new();
        let mut query = format!("?limit=4&property=name!=other{order}");
        let mut pages = 0;
        loop {
            pages += 1;
            let (status, body) = list(&env, &query).await;
            assert_eq!(status, 200, "{body}");
            seen.extend(names(&body));
            match body["_links"]["next"]["href"].as_str() {
                // aepp appends its parameters again to the next link; that must work.
                Some(href) => {
                    let href = href.strip_prefix("/connections").unwrap().to_owned();
                    assert!(href.contains("property=name%21%3Dother"), "{href}");
                    query = format!("{href}&limit=4&property=name!=other{order}");
                }
                None => break,
            }
        }
        assert_eq!(pages, 3, "{order}");
        let mut want: Vec<String> = (0..10).map(|i| format!("item-{i:02}")).collect();
        if order.contains("-") {
            want.reverse();
        }
        assert_eq!(seen, want, "{order}");
    }
    // A token from one order is refused in another.
    let (_, body) = list(&env, "?limit=2&orderby=name").await;
    let href = body["_links"]["next"]["href"].as_str().unwrap();
    let token = href
        .split('&')
        .next()
        .unwrap()
        .strip_prefix("/connections?")
        .unwrap();
    let res = env
        .req(Method::GET, &format!("/connections?{token}&orderby=-name"))
        .send()
        .await
        .unwrap();
    assert_flow_error(res, "1452-400").await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn paging_is_stable_under_concurrent_writes() {
    let env = Arc::new(Env::default().await);
    let mut stable = HashSet::new();
    for i in 0..120 {
        stable.insert(env.create(&format!("stable-{i:03}")).await.0);
    }
    // Churn: other clients create and delete while the listing runs.
    let stop = Arc::new(AtomicBool::new(false));
    let mut churners = Vec::new();
    for worker in 0..4 {
        let env = env.clone();
        let stop = stop.clone();
        churners.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                // Names sort before, among and after the stable ones.
                let prefix = ["a", "stable-05", "z"][n % 3];
                let (id, _) = env.create(&format!("{prefix}-churn-{worker}-{n}")).await;
                if n % 2 == 0 {
                    let res = env
                        .req(Method::DELETE, &format!("/connections/{id}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 204);
                }
                n += 1;
            }
            n
        }));
    }
    for order in ["", "&orderby=name", "&orderby=-name"] {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut query = format!("?limit=7{order}");
        loop {
            let (status, body) = list(&env, &query).await;
            assert_eq!(status, 200, "{body}");
            for item in body["items"].as_array().unwrap() {
                *counts
                    .entry(item["id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            match body["_links"]["next"]["href"].as_str() {
                Some(href) => query = href.strip_prefix("/connections").unwrap().to_owned(),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        for id in &stable {
            assert_eq!(counts.get(id), Some(&1), "{order}: stable item seen once");
        }
        assert!(counts.values().all(|n| *n == 1), "{order}: no item twice");
    }
    stop.store(true, Ordering::Relaxed);
    let mut churned = 0;
    for churner in churners {
        churned += churner.await.unwrap();
    }
    assert!(churned > 0);
    Arc::into_inner(env).unwrap().emu.shutdown().await;
}
