//! Load benchmark: requests per second for `GET /connections/{id}` and `POST /connections`
//! with 64 concurrent clients, and memory with 100,000 connections stored.
//!
//! `cargo run --release -p atsprov-emulator --example load [-- --url http://ADDR] [--seconds N]`
//! Without `--url` the emulator runs in this process on its own runtime (threads named
//! `emulator`), so besides requests per second the benchmark reports the emulator's own CPU
//! time per request (the load generator shares the machine's cores), and memory (its own
//! plus the load generator's). With `--url`, only requests per second are measured.

// A benchmark reports on stdout; there is no output module here.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CLIENTS: usize = 64;
const STORED: u64 = 100_000;
const ORG: &str = "0123456789ABCDEF01234567@AdobeOrg";

struct Target {
    flow: String,
    token: String,
}

fn body(n: u64) -> Value {
    json!({
        "name": format!("load-{n:06}"),
        "description": format!("load test connection {n} [atsprov:v1:0123456789abcdef]"),
        "auth": {"specName": "Connection String Based Authentication", "params": {"connectionString":
            format!("DefaultEndpointsProtocol=https;AccountName=acct{n:06};AccountKey=c2VjcmV0LWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MA==;EndpointSuffix=core.windows.net")}},
        "connectionSpec": {"id": "ecde33f2-c56f-46cc-bdea-ad151c16cd69", "version": "1.0"},
    })
}

fn request(
    client: &reqwest::Client,
    t: &Target,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{}{path}", t.flow))
        .header("authorization", format!("Bearer {}", t.token))
        .header("x-api-key", "load")
        .header("x-gw-ims-org-id", ORG)
        .header("x-sandbox-name", "prod")
}

/// Runs `CLIENTS` loops of `op` for `seconds`; returns (ok, errors, elapsed).
async fn run<F, Fut>(seconds: u64, op: F) -> (u64, u64, Duration)
where
    F: Fn(reqwest::Client, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let err = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS as u64 {
        let (op, stop, ok, err) = (op.clone(), stop.clone(), ok.clone(), err.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                if op(client.clone(), n).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    err.fetch_add(1, Ordering::Relaxed);
                }
                n += CLIENTS as u64;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    (
        ok.load(Ordering::Relaxed),
        err.load(Ordering::Relaxed),
        elapsed,
    )
}

/// Creates connections `from..to` with `CLIENTS` concurrent clients.
async fn fill(t: &Arc<Target>, from: u64, to: u64) {
    let next = Arc::new(AtomicU64::new(from));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (t, next) = (t.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= to {
                    break;
                }
                let res = request(&client, &t, reqwest::Method::POST, "/connections")
                    .json(&body(n))
                    .send()
                    .await;
                assert!(res.is_ok_and(|r| r.status() == 201), "create {n}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("fill task");
    }
}

/// CPU seconds (user + system) spent by this process's threads named `emulator`.
fn emulator_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "emulator" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is 3rd overall; utime and stime are 14th and 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(14) + field(15);
    }
    // The kernel reports clock ticks, 100 per second on Linux.
    ticks as f64 / 100.0
}

fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5);
    let before = memory();
    let (base, emulator) = match arg("--url") {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("emulator")
                .enable_all()
                .build()
                .expect("emulator runtime");
            let emu = runtime
                .spawn(atsprov_emulator::start(atsprov_emulator::Config::default()))
                .await
                .expect("start task")
                .expect("emulator starts");
            (format!("http://{}", emu.addr()), Some((emu, runtime)))
        }
    };
    let local = emulator.is_some();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/ims/token/v3"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "load"),
            ("client_secret", "load"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let t = Arc::new(Target {
        flow: format!("{base}/data/foundation/flowservice"),
        token: token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
    });
    println!("target {base}, {CLIENTS} concurrent clients, {seconds} s per phase");

    // Reads: GET /connections/{id} over 1,000 stored connections.
    fill(&t, 0, 1000).await;
    let list: Value = request(&client, &t, reqwest::Method::GET, "/connections?limit=1000")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list JSON");
    let ids: Arc<Vec<String>> = Arc::new(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect(),
    );
    let (tr, ids2) = (t.clone(), ids.clone());
    let cpu = emulator_cpu();
    let (ok, err, elapsed) = run(seconds, move |client, n| {
        let (t, ids) = (tr.clone(), ids2.clone());
        async move {
            let id = &ids[(n as usize) % ids.len()];
            match request(
                &client,
                &t,
                reqwest::Method::GET,
                &format!("/connections/{id}"),
            )
            .send()
            .await
            {
                Ok(res) => res.status() == 200 && res.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    report(
        "GET /connections/{id}",
        ok,
        err,
        elapsed,
        emulator_cpu() - cpu,
        local,
    );

    // Writes: POST /connections.
    let tw = t.clone();
    let cpu = emulator_cpu();
    let (ok, err, elapsed) = run(seconds, move |client, n| {
        let t = tw.clone();
        async move {
            match request(&client, &t, reqwest::Method::POST, "/connections")
                .json(&body(1_000_000 + n))
                .send()
                .await
            {
                Ok(res) => res.status() == 201 && res.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    report(
        "POST /connections",
        ok,
        err,
        elapsed,
        emulator_cpu() - cpu,
        local,
    );

    // Memory with 100,000 stored (in-process only).
    if let Some((emu, runtime)) = emulator {
        let stats: Value = client
            .get(emu.stats_url())
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        let stored = stats["connections"].as_u64().unwrap_or(0);
        let at_start = memory();
        if stored < STORED {
            fill(&t, 2_000_000, 2_000_000 + STORED - stored).await;
        }
        let stats: Value = client
            .get(emu.stats_url())
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        let after = memory();
        println!("stored connections: {}", stats["connections"]);
        if let (Some((rss0, _)), Some((rss1, _)), Some((rss2, hwm2))) = (before, at_start, after) {
            println!(
                "memory: VmRSS {} MB at start, {} MB with {} stored before filling, {} MB with {} stored (VmHWM {} MB)",
                rss0 / 1024,
                rss1 / 1024,
                stored,
                rss2 / 1024,
                stats["connections"],
                hwm2 / 1024
            );
        }
        runtime.spawn(emu.shutdown()).await.expect("shutdown task");
        runtime.shutdown_background();
    }
}

fn report(what: &str, ok: u64, err: u64, elapsed: Duration, cpu: f64, local: bool) {
    let rate = ok as f64 / elapsed.as_secs_f64();
    println!(
        "{what}: {rate:.0} req/s ({ok} ok, {err} errors in {:.1} s)",
        elapsed.as_secs_f64()
    );
    if local && ok > 0 {
        let per_request = cpu / ok as f64;
        println!(
            "  emulator CPU {:.1} s = {:.1} µs per request, i.e. {:.0} req/s per core it gets",
            cpu,
            per_request * 1e6,
            1.0 / per_request
        );
    }
}
