//! Checks a storage account's key against the account's own Table endpoint
//! with Azure "Shared Key Lite": `GET {endpoint}/Tables?$top=1`. A 200 means
//! the key works; a 403 `AuthenticationFailed` means it does not.

use std::time::{Duration, SystemTime};

use atsprov_model::sharedkey::{self, TableTarget};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};

use crate::config::{check_url, is_loopback};
use crate::error::{Error, ErrorKind, kind_of_status, scrub};

const USER_AGENT: &str = concat!("atsprov/", env!("CARGO_PKG_VERSION"));
/// The Table service version atsprov speaks.
const MS_VERSION: &str = "2019-02-02";
/// Attempts for one account when the endpoint cannot be reached or answers 5xx.
const ATTEMPTS: u32 = 3;

/// Checks account keys; cheap to clone, one connection pool for all checks.
#[derive(Debug, Clone)]
pub struct TableChecker {
    /// For real endpoints: honours `HTTPS_PROXY`.
    http: reqwest::Client,
    /// For loopback endpoints (Azurite, the emulator): never through a proxy.
    direct: reqwest::Client,
}

impl TableChecker {
    /// A checker with these timeouts; honours `HTTPS_PROXY` for real endpoints.
    pub fn new(connect_timeout: Duration, request_timeout: Duration) -> Result<Self, Error> {
        let build = |direct: bool| {
            let mut builder = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(connect_timeout)
                .timeout(request_timeout)
                .redirect(reqwest::redirect::Policy::none());
            if direct {
                builder = builder.no_proxy();
            }
            builder.build().map_err(|e| {
                Error::config("the HTTP client could not be set up".into()).with_source(e)
            })
        };
        Ok(Self {
            http: build(false)?,
            direct: build(true)?,
        })
    }

    /// Proves `target.key` against `target.endpoint`.
    pub async fn check(&self, target: &TableTarget) -> Result<(), Error> {
        let operation = format!(
            "check the key of storage account `{}` at `{}`",
            target.account, target.endpoint
        );
        check_url("Table endpoint", &target.endpoint)?;
        let mut url = target.endpoint.clone();
        let path = format!("{}/Tables", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(Some("$top=1"));
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match self.once(&operation, target, &url).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Server
                    ) =>
                {
                    tracing::debug!(account = %target.account, attempt, "key check failed, trying again: {e}");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::new(ErrorKind::Connect, operation, "no attempt was made")))
    }

    async fn once(
        &self,
        operation: &str,
        target: &TableTarget,
        url: &url::Url,
    ) -> Result<(), Error> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let authorization =
            sharedkey::authorization(&target.account, &target.key, &date, url.path())
                .map_err(|e| Error::new(ErrorKind::Config, operation, e.to_string()))?;
        let mut auth = HeaderValue::from_str(authorization.expose()).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                operation,
                "the account name cannot be sent in a header",
            )
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json;odata=nometadata"),
        );
        headers.insert("x-ms-version", HeaderValue::from_static(MS_VERSION));
        if let Ok(value) = HeaderValue::from_str(&date) {
            headers.insert("x-ms-date", value);
        }
        let http = if is_loopback(url) {
            &self.direct
        } else {
            &self.http
        };
        let answer = http
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(|e| {
                let host = url.host_str().unwrap_or("?").to_owned();
                let (kind, what) = if e.is_timeout() {
                    (
                        ErrorKind::Timeout,
                        format!("no answer from `{host}` in time"),
                    )
                } else {
                    (
                        ErrorKind::Connect,
                        format!(
                            "could not reach `{host}` (is the account name or endpoint right?)"
                        ),
                    )
                };
                Error::new(kind, operation, what).with_source(e)
            })?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Ok(());
        }
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let code = header("x-ms-error-code");
        let request_id = header("x-ms-request-id");
        let body = answer.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["odata.error"]["message"]["value"]
                    .as_str()
                    .map(str::to_owned)
            })
            .map(|m| {
                let first = m.lines().next().unwrap_or_default();
                scrub(first, &[target.key.expose()])
                    .chars()
                    .take(300)
                    .collect::<String>()
            });
        let (kind, text) = match (status, code.as_deref()) {
            (403, _) => (
                ErrorKind::Forbidden,
                "the account key was refused; copy a current key from the storage account's Access keys page".to_owned(),
            ),
            (404, _) => (
                ErrorKind::NotFound,
                "no such storage account or Table endpoint".to_owned(),
            ),
            _ => (kind_of_status(status), message.clone().unwrap_or_else(|| "unexpected answer".to_owned())),
        };
        let mut text = text;
        if let (Some(detail), 403 | 404) = (&message, status) {
            text = format!("{text} ({detail})");
        }
        if let Some(id) = request_id {
            text = format!("{text} [request id {id}]");
        }
        Err(Error::new(kind, operation, text)
            .with_status(status)
            .with_code(code.as_deref()))
    }
}
