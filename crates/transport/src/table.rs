//! Checks a storage account's key against the account's own Table endpoint
//! with Azure "Shared Key Lite": `GET {endpoint}/Tables?$top=1`. A 200 means
//! the key works; a 403 `AuthenticationFailed` means it does not.

use std::time::{Duration, SystemTime};

use atsprov_model::sharedkey::{self, TableTarget};
use atsprov_model::url_policy;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};

use crate::config::{Limits, RetryPolicy, check_url};
use crate::error::{Error, ErrorKind, kind_of_status};
use crate::request::{Exchange, Sender, Service};
use crate::scrub::scrub;

/// The Table service version atsprov speaks.
const MS_VERSION: &str = "2019-02-02";

/// Checks account keys; cheap to clone, one connection pool and one gate for all checks.
#[derive(Debug, Clone)]
pub struct TableChecker {
    sender: std::sync::Arc<Sender>,
}

impl TableChecker {
    /// A checker with these timeouts and the default retry policy cut to 3
    /// attempts (a check is one of many, and a wrong account name fails the
    /// same way every time); honours `HTTPS_PROXY` for real endpoints, never
    /// for loopback ones.
    pub fn new(connect_timeout: Duration, request_timeout: Duration) -> Result<Self, Error> {
        Self::with_policy(
            RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            Limits::default(),
            connect_timeout,
            request_timeout,
        )
    }

    /// A checker with its own retry policy and limits.
    pub fn with_policy(
        retry: RetryPolicy,
        limits: Limits,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        Ok(Self {
            sender: std::sync::Arc::new(Sender::new(
                retry,
                limits,
                connect_timeout,
                request_timeout,
            )?),
        })
    }

    /// Proves `target.key` against `target.endpoint`, through the one request
    /// path (its retry policy, `Retry-After` and gate).
    pub async fn check(&self, target: &TableTarget) -> Result<(), Error> {
        let operation = format!(
            "check the key of storage account `{}` at `{}`",
            target.account,
            url_policy::shown(&target.endpoint)
        );
        check_url("Table endpoint", &target.endpoint)?;
        let mut url = target.endpoint.clone();
        let path = format!("{}/Tables", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(Some("$top=1"));
        // The signature covers the date, so a retry after a long pause would
        // still be inside Azure's 15-minute window.
        let date = httpdate::fmt_http_date(SystemTime::now());
        let authorization =
            sharedkey::authorization(&target.account, &target.key, &date, url.path())
                .map_err(|e| Error::new(ErrorKind::Config, operation.clone(), e.to_string()))?;
        let mut auth = HeaderValue::from_str(authorization.expose()).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                operation.clone(),
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
        let exchange = Exchange {
            operation,
            sandbox: None,
            service: Service::Table,
            method: Method::GET,
            url,
            headers,
            body: None,
            repeatable: true,
            secrets: vec![target.key.expose(), authorization.expose()],
            read_error: read_table_error,
        };
        self.sender.send(&exchange).await.map(drop)
    }
}

/// Azure's answer to a refused check: `x-ms-error-code`, the OData message,
/// and what to do about a refused key or a missing account.
fn read_table_error(
    exchange: &Exchange<'_>,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| scrub(v, &exchange.secrets))
    };
    let code = header("x-ms-error-code");
    let request_id = header("x-ms-request-id");
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["odata.error"]["message"]["value"]
                .as_str()
                .map(str::to_owned)
        })
        .map(|m| {
            let first = m.lines().next().unwrap_or_default();
            scrub(first, &exchange.secrets)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(300)
                .collect::<String>()
        });
    let (kind, text, hint) = match status {
        403 => (
            ErrorKind::Forbidden,
            "the account key was refused".to_owned(),
            Some("copy a current key from the storage account's Access keys page"),
        ),
        404 => (
            ErrorKind::NotFound,
            "no such storage account or Table endpoint".to_owned(),
            Some("check the account name and the endpoint suffix"),
        ),
        _ => (
            kind_of_status(status),
            message
                .clone()
                .unwrap_or_else(|| "unexpected answer".to_owned()),
            None,
        ),
    };
    let mut text = text;
    if let (Some(detail), 403 | 404) = (&message, status) {
        text = format!("{text} ({detail})");
    }
    let mut error = Error::new(kind, exchange.operation.clone(), text)
        .with_status(status)
        .with_code(code.as_deref());
    if let Some(id) = request_id {
        error = error.with_request_id(&id);
    }
    if let Some(hint) = hint {
        error = error.with_hint(hint);
    }
    error
}
