//! The Azure Table service imitation: `GET /{account}/Tables` with Shared Key Lite.

use std::time::{Duration, SystemTime};

use atsprov_emulator::{Config, ConfigError, RunningEmulator};
use atsprov_model::Secret;
use reqwest::Response;
use serde_json::{Value, json};

const ACCOUNT: &str = "devstoreaccount1";
const TABLE_KEY: &str = "dGFibGUtc2VydmljZS1rZXktZm9yLXRlc3RzLTAxMjM0NTY3ODk=";
const OTHER_KEY: &str = "b3RoZXIta2V5LXRoYXQtaXMtbm90LXRoZS1vbmU=";

fn config() -> Config {
    Config {
        table_accounts: vec![(ACCOUNT.to_owned(), Secret::new(TABLE_KEY))],
        // Table requests ignore the Flow Service faults.
        fail_rate: 1.0,
        rate_limit: Some(1),
        ..Config::default()
    }
}

struct Table {
    emu: RunningEmulator,
    http: reqwest::Client,
}

impl Table {
    async fn start() -> Table {
        Table {
            emu: atsprov_emulator::start(config()).await.unwrap(),
            http: reqwest::Client::new(),
        }
    }

    /// `GET {account}/Tables?$top=1` as `atsprov verify` sends it, signed with `key` at `date`.
    async fn send(&self, account: &str, key: &str, date: Option<&str>, sign: bool) -> Response {
        let path = format!("/{account}/Tables");
        let now = httpdate::fmt_http_date(SystemTime::now());
        let date = date.unwrap_or(&now);
        let mut request = self
            .http
            .get(format!("{}/Tables?$top=1", self.emu.table_url(account)))
            .header("x-ms-date", date)
            .header("x-ms-version", "2019-02-02")
            .header("accept", "application/json;odata=nometadata");
        if sign {
            let auth =
                atsprov_model::sharedkey::authorization(account, &Secret::new(key), date, &path)
                    .unwrap();
            request = request.header("authorization", auth.expose());
        }
        request.send().await.unwrap()
    }
}

/// Status, `x-ms-error-code` and JSON body; asserts the key is nowhere in the body.
async fn parts(res: Response) -> (u16, Option<String>, Value) {
    let status = res.status().as_u16();
    assert!(res.headers().contains_key("x-ms-request-id"));
    assert_eq!(
        res.headers()["content-type"],
        "application/json;odata=nometadata"
    );
    let code = res
        .headers()
        .get("x-ms-error-code")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert!(!text.contains(TABLE_KEY), "{text}");
    assert!(!text.contains(OTHER_KEY), "{text}");
    (status, code, serde_json::from_str(&text).unwrap())
}

async fn assert_azure_error(res: Response, status: u16, code: &str) {
    let request_id = res.headers()["x-ms-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (got, header_code, body) = parts(res).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(header_code.as_deref(), Some(code));
    let error = &body["odata.error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["message"]["lang"], "en-US");
    let message = error["message"]["value"].as_str().unwrap();
    assert!(message.contains(&request_id), "{message}");
}

#[tokio::test]
async fn a_valid_signature_lists_no_tables() {
    let t = Table::start().await;
    for _ in 0..3 {
        let res = t.send(ACCOUNT, TABLE_KEY, None, true).await;
        let (status, code, body) = parts(res).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(code, None);
        assert_eq!(body, json!({"value": []}));
    }
    // A trailing slash is the same path, signed as sent.
    let date = httpdate::fmt_http_date(SystemTime::now());
    let path = format!("/{ACCOUNT}/Tables/");
    let auth =
        atsprov_model::sharedkey::authorization(ACCOUNT, &Secret::new(TABLE_KEY), &date, &path)
            .unwrap();
    let res = t
        .http
        .get(format!("http://{}{path}", t.emu.addr()))
        .header("x-ms-date", &date)
        .header("authorization", auth.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn wrong_key_old_date_missing_header_and_unknown_account_are_refused() {
    let t = Table::start().await;
    let res = t.send(ACCOUNT, OTHER_KEY, None, true).await;
    assert_azure_error(res, 403, "AuthenticationFailed").await;

    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(20 * 60));
    let res = t.send(ACCOUNT, TABLE_KEY, Some(&old), true).await;
    assert_azure_error(res, 403, "AuthenticationFailed").await;

    let res = t.send(ACCOUNT, TABLE_KEY, None, false).await;
    assert_azure_error(res, 403, "AuthenticationFailed").await;

    let res = t
        .http
        .get(format!("{}/Tables", t.emu.table_url(ACCOUNT)))
        .header("authorization", format!("SharedKeyLite {ACCOUNT}:abc="))
        .send()
        .await
        .unwrap();
    assert_azure_error(res, 403, "AuthenticationFailed").await;

    // Signed correctly with its own key, but the emulator does not know the account.
    let res = t.send("unknownacct", TABLE_KEY, None, true).await;
    assert_azure_error(res, 404, "ResourceNotFound").await;

    let res = t
        .http
        .post(format!("{}/Tables", t.emu.table_url(ACCOUNT)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_azure_error(res, 405, "UnsupportedHttpVerb").await;
    t.emu.shutdown().await;
}

#[tokio::test]
async fn table_requests_are_counted_and_other_paths_unchanged() {
    let t = Table::start().await;
    t.send(ACCOUNT, TABLE_KEY, None, true).await;
    t.send(ACCOUNT, OTHER_KEY, None, true).await;
    t.send("nope", TABLE_KEY, None, true).await;
    for path in [
        "/Tables",
        "/a/b/Tables",
        "/devstoreaccount1/tables",
        "/devstoreaccount1",
    ] {
        let res = t
            .http
            .get(format!("http://{}{path}", t.emu.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error_code"], "404010", "{path}");
    }
    let stats: Value = t
        .http
        .get(t.emu.stats_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_route"]["table"], 3, "{stats}");
    assert_eq!(stats["by_route"]["other"], 4, "{stats}");
    assert_eq!(
        stats["by_route_status"]["table"],
        json!({"200": 1, "403": 1, "404": 1})
    );
    assert_eq!(stats["injected_failures"], 0);
    assert_eq!(stats["rate_limited"], 0);
    t.emu.shutdown().await;
}

#[test]
fn config_hides_table_keys_and_checks_them() {
    let text = format!("{:?}", config());
    assert!(!text.contains(TABLE_KEY), "{text}");
    assert!(text.contains(ACCOUNT), "{text}");
    let with = |accounts: &[(&str, &str)]| Config {
        table_accounts: accounts
            .iter()
            .map(|(name, key)| (name.to_string(), Secret::new(*key)))
            .collect(),
        ..Config::default()
    };
    assert_eq!(with(&[("acct", TABLE_KEY)]).validate(), Ok(()));
    let err = with(&[("acct", "not*base64!")]).validate().unwrap_err();
    assert_eq!(err, ConfigError::TableAccountKey("acct".into()));
    assert!(!err.to_string().contains("not*base64!"));
    assert_eq!(
        with(&[("acct", "")]).validate(),
        Err(ConfigError::TableAccountKey("acct".into()))
    );
    assert_eq!(
        with(&[("", TABLE_KEY)]).validate(),
        Err(ConfigError::TableAccountName(String::new()))
    );
    assert_eq!(
        with(&[("a/b", TABLE_KEY)]).validate(),
        Err(ConfigError::TableAccountName("a/b".into()))
    );
    assert_eq!(
        with(&[("acct", TABLE_KEY), ("acct", OTHER_KEY)]).validate(),
        Err(ConfigError::DuplicateTableAccount("acct".into()))
    );
}
