//! Helpers: start an emulator, get a token, build requests with Adobe's headers.

use atsprov_emulator::{Config, RunningEmulator};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

pub(crate) const ORG: &str = "0123456789ABCDEF01234567@AdobeOrg";
pub(crate) const API_KEY: &str = "test-client";
pub(crate) const KEY: &str = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OTA=";
pub(crate) const SPEC: &str = "ecde33f2-c56f-46cc-bdea-ad151c16cd69";
pub(crate) const AUTH_SPEC: &str = "Connection String Based Authentication";

pub(crate) struct Env {
    pub(crate) emu: RunningEmulator,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
    pub(crate) org: String,
    pub(crate) sandbox: String,
}

pub(crate) fn connection_string(account: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=https;AccountName={account};AccountKey={KEY};EndpointSuffix=core.windows.net"
    )
}

pub(crate) fn new_connection(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("about {name}"),
        "auth": {"specName": AUTH_SPEC, "params": {"connectionString": connection_string(name)}},
        "connectionSpec": {"id": SPEC, "version": "1.0"},
    })
}

impl Env {
    pub(crate) async fn start(config: Config) -> Env {
        let emu_config = config.clone();
        let emu = atsprov_emulator::start(config)
            .await
            .expect("emulator starts");
        let http = reqwest::Client::new();
        let (id, secret) = config_pair(&emu_config);
        let token = token(&http, &emu, &id, &secret).await;
        Env {
            emu,
            http,
            token,
            org: ORG.to_owned(),
            sandbox: "prod".to_owned(),
        }
    }

    pub(crate) async fn default() -> Env {
        Env::start(Config::default()).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.flow_url())
    }

    /// A request with every header the API wants.
    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_in(method, path, &self.sandbox)
    }

    /// A request with every header the API wants, in another sandbox.
    pub(crate) fn req_in(&self, method: Method, path: &str, sandbox: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("authorization", format!("Bearer {}", self.token))
            .header("x-api-key", API_KEY)
            .header("x-gw-ims-org-id", &self.org)
            .header("x-sandbox-name", sandbox)
    }

    pub(crate) async fn create(&self, name: &str) -> (String, String) {
        let res = self
            .req(Method::POST, "/connections")
            .json(&new_connection(name))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "create {name}");
        let body: Value = res.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["etag"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn get(&self, id: &str) -> Value {
        let res = self
            .req(Method::GET, &format!("/connections/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut body: Value = res.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        body["items"][0].take()
    }

    pub(crate) async fn stats(&self) -> Value {
        self.http
            .get(self.emu.stats_url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The configured client pair, or any pair.
fn config_pair(config: &Config) -> (String, String) {
    config
        .client_credentials
        .clone()
        .unwrap_or_else(|| (API_KEY.to_owned(), "any-secret".to_owned()))
}

pub(crate) async fn token(
    http: &reqwest::Client,
    emu: &RunningEmulator,
    id: &str,
    secret: &str,
) -> String {
    let res = http
        .post(emu.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "openid,AdobeID,read_organizations"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Status and JSON body (Null when empty).
pub(crate) async fn parts(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
    };
    (status, body)
}

/// Asserts a Flow Service error with the code, e.g. `1439-404`.
pub(crate) async fn assert_flow_error(res: Response, code: &str) {
    let request_id = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("x-request-id header");
    let (status, body) = parts(res).await;
    let expected_status: u16 = code[code.len() - 3..].parse().unwrap();
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(
        body["type"],
        format!("https://ns.adobe.com/aep/errors/FLOW-{code}"),
        "{body}"
    );
    assert_eq!(body["status"], expected_status);
    assert!(body["title"].is_string());
    assert!(body["errorMessage"].is_string());
    assert!(body["report"]["detailed-message"].is_string());
    assert_eq!(body["report"]["request-id"], request_id.as_str());
}

/// Asserts a gateway error `{"error_code","message"}`.
pub(crate) async fn assert_gateway_error(res: Response, status: u16, code: &str) {
    assert!(res.headers().contains_key("x-request-id"));
    let (got, body) = parts(res).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(body["message"].is_string());
}

impl Env {
    /// `POST /_emulator/connections` in this env's org; the id.
    pub(crate) async fn seed(&self, body: Value) -> String {
        let res = self
            .http
            .post(format!("http://{}/_emulator/connections", self.emu.addr()))
            .header("x-gw-ims-org-id", &self.org)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, body) = parts(res).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// A PATCH with the connection's current etag.
    pub(crate) async fn patch(&self, id: &str, ops: Value) -> Response {
        let etag = self.get(id).await["etag"].as_str().unwrap().to_owned();
        self.req(Method::PATCH, &format!("/connections/{id}"))
            .header("if-match", etag)
            .json(&ops)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn delete(&self, id: &str) -> Response {
        self.req(Method::DELETE, &format!("/connections/{id}"))
            .send()
            .await
            .unwrap()
    }

    /// The names a plain listing shows now.
    pub(crate) async fn listed_names(&self) -> Vec<String> {
        let res = self.req(Method::GET, "/connections").send().await.unwrap();
        let (status, body) = parts(res).await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Asserts a status and, for errors, the Flow code (`"1455-400"`); `None` for successes.
pub(crate) async fn assert_answer(res: Response, status: u16, code: Option<&str>) {
    match code {
        Some(code) => assert_flow_error(res, code).await,
        None => {
            let (got, body) = parts(res).await;
            assert_eq!(got, status, "{body}");
        }
    }
}
