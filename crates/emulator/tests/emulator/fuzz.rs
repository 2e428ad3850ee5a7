//! A seeded mutation run: hundreds of hostile requests (odd methods, paths, query strings,
//! headers and bodies), each of which must get a well-formed HTTP answer (no panic, no hang),
//! and the emulator must still serve normal requests afterwards.
//!
//! `ATSPROV_FUZZ_CASES` sets the number of cases (default 200) and `ATSPROV_FUZZ_SEED` the
//! seed; `cargo test -p atsprov-emulator --test emulator fuzz_emulator_requests` runs it.

use std::time::Duration;

use atsprov_emulator::Config;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// A few bytes that are not UTF-8, or control characters.
fn garbage(rng: &mut fastrand::Rng) -> Vec<u8> {
    (0..rng.usize(1..12))
        .map(|_| {
            *pick(
                rng,
                &[0xff, 0xfe, 0xc3, 0x80, 0x00, 0x1b, b'%', b'"', b'\\', b'{'],
            )
        })
        .collect()
}

fn path(rng: &mut fastrand::Rng, ids: &[String]) -> Vec<u8> {
    let id = pick(rng, ids).clone();
    let bases = [
        "/data/foundation/flowservice/connections".to_owned(),
        format!("/data/foundation/flowservice/connections/{id}"),
        format!("/data/foundation/flowservice/connections/{id}/test"),
        format!("/data/foundation/flowservice/connections/{id}/"),
        "/data/foundation/flowservice".to_owned(),
        "/ims/token/v3".to_owned(),
        "/_emulator/stats".to_owned(),
        "/_emulator/connections".to_owned(),
        "/acct/Tables".to_owned(),
        "/".to_owned(),
    ];
    let mut path = pick(rng, &bases).clone().into_bytes();
    match rng.u8(..6) {
        0 => path
            .extend_from_slice(pick(rng, &["%", "%zz", "%ff%fe", "//x", "/..", "/%00"]).as_bytes()),
        1 => {
            let queries = [
                "?limit=99999999999999999999999",
                "?limit=-1",
                "?property=name==%ff",
                "?property=",
                "?property=createdAt>=1e400",
                "?count=true&limit=1",
                "?continuationToken=%00%ff",
                "?continuationToken=eyJvIjoiIiwiayI6bnVsbCwicyI6MTg0NDY3NDQwNzM3MDk1NTE2MTV9",
                "?&&&=&=",
                "?orderby=-",
                "?orderby=%2B%2Bname",
                "?unknown=1",
                "?property=name==a&property=name==a&property=name!=b",
            ];
            path.extend_from_slice(pick(rng, &queries).as_bytes());
        }
        2 => {
            path.push(b'?');
            path.extend_from_slice(&garbage(rng));
        }
        3 => path.extend(std::iter::repeat_n(b'a', rng.usize(..5000))),
        _ => {}
    }
    path
}

fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    let valid = serde_json::to_string(&new_connection("fuzz")).unwrap();
    match rng.u8(..11) {
        0 => Vec::new(),
        1 => valid.into_bytes(),
        2 => {
            let cut = rng.usize(..valid.len());
            valid.as_bytes()[..cut].to_vec()
        }
        3 => b"{\"name\": 123456789012345678901234567890e99999, \"auth\": 1e-99999}".to_vec(),
        4 => {
            let depth = rng.usize(100..20_000);
            let mut nested = "[".repeat(depth);
            nested.push_str(&"]".repeat(depth));
            nested.into_bytes()
        }
        5 => {
            let mut bytes = valid.into_bytes();
            let at = rng.usize(..bytes.len());
            bytes.splice(at..at, garbage(rng));
            bytes
        }
        6 => br#"[{"op":"add","path":"/description","value":"x"},{"op":"remove","path":"/description"},{"op":"replace","path":"/auth/params","value":{"connectionString":"AccountName=a;AccountKey=a2V5"}},{"op":"REPLACE","path":"/connectionSpec/id"}]"#.to_vec(),
        7 => br#"[{"op":"test"},{"path":null},7,[],{"op":"add","path":"/name","value":{"deep":[1,2,3]}}]"#.to_vec(),
        8 => b"grant_type=client_credentials&client_id=%ff&client_secret=&scope=a,,b&&&".to_vec(),
        9 => (0..rng.usize(..2000)).map(|_| rng.u8(..)).collect(),
        _ => br#"{"sandbox":"prod","name":"seeded","state":"\u0000","in_use":true,"spec":""}"#.to_vec(),
    }
}

fn request(rng: &mut fastrand::Rng, env: &Env, ids: &[String]) -> Vec<u8> {
    let methods: [&[u8]; 10] = [
        b"GET", b"POST", b"PATCH", b"DELETE", b"PUT", b"HEAD", b"OPTIONS", b"FOO", b"G\x01T",
        b"post",
    ];
    let mut out = pick(rng, &methods).to_vec();
    out.push(b' ');
    out.extend(path(rng, ids));
    out.extend_from_slice(b" HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n");
    let bearer = format!("Bearer {}", env.token);
    let headers: [(&str, &[&[u8]]); 6] = [
        (
            "authorization",
            &[bearer.as_bytes(), b"Bearer", b"Bearer \xff\xfe", b"Basic x"],
        ),
        ("x-api-key", &[API_KEY.as_bytes(), b"", b"\xc3\x80"]),
        ("x-gw-ims-org-id", &[ORG.as_bytes(), b"\x80org"]),
        ("x-sandbox-name", &[b"prod", b"PROD", b"\xff", b"dev"]),
        (
            "content-type",
            &[
                b"application/json",
                b"text/plain",
                b"application/x-www-form-urlencoded",
                b"application/json; charset=\xff",
            ],
        ),
        ("if-match", &[b"\"x\"", b"*", b"\xff"]),
    ];
    for (name, values) in headers {
        if rng.u8(..10) < 8 {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            let value: &&[u8] = pick(rng, values);
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    if rng.u8(..10) == 0 {
        out.extend_from_slice(b"x-long: ");
        out.extend(std::iter::repeat_n(b'v', rng.usize(..20_000)));
        out.extend_from_slice(b"\r\n");
    }
    let body = body(rng);
    if rng.bool() {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend(body);
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        for chunk in body.chunks(rng.usize(1..4096)) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

/// Sends one raw request and reads until the server closes.
async fn exchange(addr: std::net::SocketAddr, request: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // The server may answer (e.g. 413) and close before reading everything.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = read.read_to_end(&mut answer).await;
    let _ = writer.await;
    answer
}

/// The first answer's status, once its head and declared body are checked (an answer to
/// `HEAD` declares a length but has no body).
fn check_answer(answer: &[u8], head_request: bool) -> Result<u16, String> {
    let text = String::from_utf8_lossy(answer);
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete head")?;
    let head = &text[..head_end];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or("no HTTP/1.1 status line")?;
    if !(100..600).contains(&status) {
        return Err(format!("status {status}"));
    }
    for line in lines {
        let (name, value) = line.split_once(':').ok_or("a header without `:`")?;
        if name.eq_ignore_ascii_case("content-length") && !head_request {
            let length: usize = value.trim().parse().map_err(|_| "bad content-length")?;
            if answer.len() < head_end + 4 + length {
                return Err("body shorter than its content-length".to_owned());
            }
        }
    }
    Ok(status)
}

#[tokio::test]
async fn fuzz_emulator_requests() {
    let cases = env_number("ATSPROV_FUZZ_CASES", 200);
    let seed = env_number("ATSPROV_FUZZ_SEED", 0x05ee_da75);
    let env = Env::start(Config {
        header_read_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        ids.push(env.create(name).await.0);
    }
    ids.push("not-an-id".to_owned());
    let mut rng = fastrand::Rng::with_seed(seed);
    for case in 0..cases {
        let request = request(&mut rng, &env, &ids);
        let head_request = request.starts_with(b"HEAD ");
        let shown = String::from_utf8_lossy(&request[..request.len().min(300)]).into_owned();
        let answer =
            tokio::time::timeout(Duration::from_secs(20), exchange(env.emu.addr(), request))
                .await
                .unwrap_or_else(|_| panic!("case {case} (seed {seed}) hung: {shown:?}"));
        let status = check_answer(&answer, head_request).unwrap_or_else(|why| {
            panic!(
                "case {case} (seed {seed}): {why}: {:?}\nrequest: {shown:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            )
        });
        assert!(
            status < 500,
            "case {case} (seed {seed}): status {status}\nrequest: {shown:?}\nanswer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
    }
    // Still serving.
    let res = env.req(Method::GET, "/connections").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(env.stats().await["requests"].as_u64().unwrap() > 0);
    env.emu.shutdown().await;
}
