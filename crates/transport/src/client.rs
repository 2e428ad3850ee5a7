//! The client: typed Flow Service calls over one request loop that carries the
//! token and the identity headers, retries what is safe to retry and turns the
//! rest into typed errors.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use atsprov_model::Secret;
use atsprov_model::wire::{
    ATS_CONNECTION_SPEC_ID, Connection, ConnectionList, MAX_PAGE_SIZE, NewConnection, PatchOp,
    TestResult, TokenResponse, Written,
};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tracing::{Instrument, debug, debug_span, trace};
use url::Url;

use crate::config::{AuthConfig, ClientConfig, RetryPolicy, check_url};
use crate::error::{Error, ErrorKind, connection_string_secrets, describe_json_error, scrub};
use crate::retry::{Gate, backoff, parse_retry_after};
use crate::token::{Token, TokenCache};

const USER_AGENT: &str = concat!("atsprov/", env!("CARGO_PKG_VERSION"));

/// The Flow Service client of one organization. Cheap to clone: clones share
/// the connection pool, the token, the rate-limit gate and the counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientStats {
    /// Flow Service requests sent (every attempt counts).
    pub requests: u64,
    /// Retries of Flow Service requests (renewals after a 401 excluded).
    pub retries: u64,
    /// 429 and 503 answers seen.
    pub throttled: u64,
    /// Requests sent to the IMS token endpoint.
    pub token_requests: u64,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    api_key: HeaderValue,
    org_id: HeaderValue,
    auth: AuthConfig,
    retry: RetryPolicy,
    request_timeout: Duration,
    tokens: TokenCache,
    gate: Gate,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    token_requests: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One Flow Service call, as the request loop needs it.
struct Call<'a> {
    /// What a person reads in an error: ``create `sales-eu` ``.
    operation: String,
    sandbox: &'a str,
    method: Method,
    url: Url,
    /// The kind of path, for logs: `connections`, `connection`, `connection/test`.
    path_kind: &'static str,
    body: Option<Vec<u8>>,
    if_match: Option<HeaderValue>,
    /// Secrets in the body, blanked out of anything the server echoes.
    secrets: Vec<&'a str>,
}

impl Call<'_> {
    /// Whether sending the request twice is harmless: everything but a create.
    fn repeatable(&self) -> bool {
        self.method != Method::POST
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, self.operation.clone(), message).with_sandbox(self.sandbox)
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Vec<u8>),
    Unauthorized(Error),
    Retry {
        error: Error,
        retry_after: Option<Duration>,
    },
    Fail(Error),
}

impl Client {
    /// A client for `config`. Fails with [`ErrorKind::Config`] when a URL is
    /// not https (plain http is allowed only to loopback hosts), a header value
    /// is empty or unprintable, or the HTTP stack cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let mut endpoint = config.endpoint;
        check_url("Flow Service endpoint", &endpoint)?;
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let ready = match &config.auth {
            AuthConfig::AccessToken(token) => {
                if token.is_blank() {
                    return Err(Error::config("the access token is empty".into()));
                }
                if HeaderValue::from_str(token.expose()).is_err() {
                    return Err(Error::config(
                        "the access token contains characters that cannot be sent in a header"
                            .into(),
                    ));
                }
                Some(token.clone())
            }
            AuthConfig::ClientCredentials {
                token_url,
                client_secret,
                ..
            } => {
                check_url("IMS token URL", token_url)?;
                if client_secret.is_blank() {
                    return Err(Error::config("the client secret is empty".into()));
                }
                None
            }
        };
        let api_key = header_value("API key (`api_key`)", &config.api_key)?;
        let org_id = header_value("organization id (`org_id`)", &config.org_id)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // The API does not redirect; following one could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        // HTTPS_PROXY and friends are honoured for the real API (corporate
        // networks), never for a loopback endpoint such as the emulator.
        if crate::config::is_loopback(&endpoint) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| {
            Error::config("the HTTP client could not be set up".into()).with_source(e)
        })?;
        let mut retry = config.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                api_key,
                org_id,
                auth: config.auth,
                retry,
                request_timeout: config.request_timeout,
                tokens: TokenCache::new(ready),
                gate: Gate::default(),
                stats: Counters::default(),
            }),
        })
    }

    /// Gets an access token now, so a wrong client secret shows before any work
    /// starts. With a ready token this does nothing.
    pub async fn authenticate(&self) -> Result<(), Error> {
        self.inner.token().await.map(drop)
    }

    /// Every ATS connection of `sandbox`, all pages.
    pub async fn list_connections(&self, sandbox: &str) -> Result<Vec<Connection>, Error> {
        self.inner.list(sandbox, None).await
    }

    /// The ATS connections of `sandbox` named exactly `name` (names are not unique).
    pub async fn list_connections_named(
        &self,
        sandbox: &str,
        name: &str,
    ) -> Result<Vec<Connection>, Error> {
        self.inner.list(sandbox, Some(name)).await
    }

    /// One connection by id.
    pub async fn get_connection(&self, sandbox: &str, id: &str) -> Result<Connection, Error> {
        let call = Call {
            operation: format!("read connection `{id}`"),
            sandbox,
            method: Method::GET,
            url: self.inner.url(&["connections", id]),
            path_kind: "connection",
            body: None,
            if_match: None,
            secrets: Vec::new(),
        };
        let list: ConnectionList = self.inner.json(&call).await?;
        list.items.into_iter().next().ok_or_else(|| {
            call.error(ErrorKind::NotFound, "the answer holds no connection")
                .with_status(200)
        })
    }

    /// Creates a connection. Never repeated once the request may have reached
    /// the server: then the error is [`ErrorKind::Ambiguous`].
    pub async fn create_connection(
        &self,
        sandbox: &str,
        body: &NewConnection,
    ) -> Result<Written, Error> {
        let operation = format!("create `{}`", body.name);
        let bytes = serde_json::to_vec(body).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                operation.clone(),
                describe_json_error(&e),
            )
            .with_sandbox(sandbox)
        })?;
        let call = Call {
            operation,
            sandbox,
            method: Method::POST,
            url: self.inner.url(&["connections"]),
            path_kind: "connections",
            body: Some(bytes),
            if_match: None,
            secrets: connection_string_secrets(body.auth.params.connection_string.expose()),
        };
        self.inner.json(&call).await
    }

    /// Applies a JSON Patch; `etag` is sent as `If-Match` exactly as given.
    /// A stale etag fails with [`ErrorKind::PreconditionFailed`].
    pub async fn patch_connection(
        &self,
        sandbox: &str,
        id: &str,
        etag: &str,
        ops: &[PatchOp],
    ) -> Result<Written, Error> {
        let operation = format!("update connection `{id}`");
        let if_match = HeaderValue::from_str(etag).map_err(|_| {
            Error::new(
                ErrorKind::BadRequest,
                operation.clone(),
                format!("the etag `{etag}` cannot be sent in an `If-Match` header"),
            )
            .with_sandbox(sandbox)
        })?;
        let bytes = serde_json::to_vec(ops).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                operation.clone(),
                describe_json_error(&e),
            )
            .with_sandbox(sandbox)
        })?;
        let secrets = ops
            .iter()
            .flat_map(|op| match op {
                PatchOp::Credentials(secret) => connection_string_secrets(secret.expose()),
                PatchOp::Description(_) => Vec::new(),
            })
            .collect();
        let call = Call {
            operation,
            sandbox,
            method: Method::PATCH,
            url: self.inner.url(&["connections", id]),
            path_kind: "connection",
            body: Some(bytes),
            if_match: Some(if_match),
            secrets,
        };
        self.inner.json(&call).await
    }

    /// Deletes a connection.
    pub async fn delete_connection(&self, sandbox: &str, id: &str) -> Result<(), Error> {
        let call = Call {
            operation: format!("delete connection `{id}`"),
            sandbox,
            method: Method::DELETE,
            url: self.inner.url(&["connections", id]),
            path_kind: "connection",
            body: None,
            if_match: None,
            secrets: Vec::new(),
        };
        self.inner.execute(&call).await.map(drop)
    }

    /// Asks the service to check the stored credentials; true when they work.
    pub async fn test_connection(&self, sandbox: &str, id: &str) -> Result<bool, Error> {
        let call = Call {
            operation: format!("test connection `{id}`"),
            sandbox,
            method: Method::GET,
            url: self.inner.url(&["connections", id, "test"]),
            path_kind: "connection/test",
            body: None,
            if_match: None,
            secrets: Vec::new(),
        };
        let result: TestResult = self.inner.json(&call).await?;
        Ok(result.result)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.stats;
        ClientStats {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            token_requests: s.token_requests.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("org_id", &self.inner.org_id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The URL of a path below the endpoint; segments are percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        // `Client::new` checked that the endpoint can be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Resolves `_links.next.href`, a path relative to the endpoint, or a full
    /// URL. A link to another origin is refused: the token must not go there.
    fn next_page(&self, href: &str) -> Option<Url> {
        let base = &self.endpoint;
        let url = if href.starts_with("http://") || href.starts_with("https://") {
            Url::parse(href).ok()?
        } else {
            let base_path = base.path().trim_end_matches('/');
            let path = if href.starts_with('/') {
                href.to_owned()
            } else {
                format!("/{href}")
            };
            let absolute = if !base_path.is_empty() && path.starts_with(&format!("{base_path}/")) {
                path
            } else {
                format!("{base_path}{path}")
            };
            base.join(&absolute).ok()?
        };
        (url.origin() == base.origin()).then_some(url)
    }

    async fn list(&self, sandbox: &str, name: Option<&str>) -> Result<Vec<Connection>, Error> {
        let operation = match name {
            Some(name) => format!("list connections named `{name}`"),
            None => "list connections".to_owned(),
        };
        let mut url = self.url(&["connections"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(
                "property",
                &format!("connectionSpec.id=={ATS_CONNECTION_SPEC_ID}"),
            );
            // A name the filter syntax cannot carry (`,` means "any of") is
            // matched here instead, over the full list.
            if let Some(name) = name.filter(|n| filterable(n)) {
                query.append_pair("property", &format!("name=={name}"));
            }
            query.append_pair("limit", &MAX_PAGE_SIZE.to_string());
        }
        let mut seen_pages = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut items = Vec::new();
        loop {
            let call = Call {
                operation: operation.clone(),
                sandbox,
                method: Method::GET,
                url: url.clone(),
                path_kind: "connections",
                body: None,
                if_match: None,
                secrets: Vec::new(),
            };
            let page: ConnectionList = self.json(&call).await?;
            debug!(
                sandbox,
                items = page.items.len(),
                "listed a page of connections"
            );
            // Pages read while others write can overlap; keep each id once.
            items.extend(
                page.items
                    .into_iter()
                    .filter(|c| seen_ids.insert(c.id.clone())),
            );
            let Some(href) = page
                .links
                .and_then(|l| l.next)
                .map(|n| n.href)
                .filter(|h| !h.trim().is_empty())
            else {
                break;
            };
            url = self.next_page(&href).ok_or_else(|| {
                call.error(
                    ErrorKind::Decode,
                    format!(
                        "the next-page link `{}` does not point below the endpoint",
                        scrub(&href, &[])
                    ),
                )
            })?;
            if !seen_pages.insert(url.to_string()) {
                return Err(call.error(
                    ErrorKind::Decode,
                    format!(
                        "the next-page link `{}` repeats an earlier page",
                        scrub(&href, &[])
                    ),
                ));
            }
        }
        items.retain(|c| {
            c.connection_spec.id == ATS_CONNECTION_SPEC_ID && name.is_none_or(|n| c.name == n)
        });
        Ok(items)
    }

    /// Runs `call` and reads its answer as `T`.
    async fn json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, Error> {
        let body = self.execute(call).await?;
        serde_json::from_slice(&body).map_err(|e| {
            if call.repeatable() {
                call.error(ErrorKind::Decode, describe_json_error(&e))
            } else {
                // The create was carried out; only its answer is unreadable.
                call.error(
                    ErrorKind::Ambiguous,
                    format!(
                        "{}; the connection was probably created: list the sandbox before trying again",
                        describe_json_error(&e)
                    ),
                )
            }
        })
    }

    /// Sends `call` until it succeeds, fails for good, or the retry policy is spent.
    async fn execute(&self, call: &Call<'_>) -> Result<Vec<u8>, Error> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = self.token().await.map_err(|e| match e.sandbox() {
                Some(_) => e,
                None => e.with_sandbox(call.sandbox),
            })?;
            self.gate.pass().await;
            let span = debug_span!(
                "flow_request",
                method = %call.method,
                path = call.path_kind,
                sandbox = call.sandbox,
                attempt,
            );
            let (error, retry_after) = match self.attempt(call, &token).instrument(span).await {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fail(error) => return Err(error),
                Attempt::Unauthorized(error) => {
                    if renewed || matches!(self.auth, AuthConfig::AccessToken(_)) {
                        return Err(error);
                    }
                    // The token expired early or was revoked: renew once and repeat.
                    debug!(sandbox = call.sandbox, "401: renewing the access token");
                    renewed = true;
                    attempt -= 1;
                    self.tokens.invalidate(token.generation);
                    continue;
                }
                Attempt::Retry { error, retry_after } => (error, retry_after),
            };
            let delay = self.delay_before_retry(attempt, started, retry_after, &error)?;
            if retry_after.is_some() {
                // Everyone waits, not only this call.
                self.gate.close_until(Instant::now() + delay);
            }
            bump(&self.stats.retries);
            debug!(
                sandbox = call.sandbox,
                path = call.path_kind,
                attempt,
                status = error.status(),
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// How long to wait before the next attempt, or the error to return when
    /// the policy allows none.
    fn delay_before_retry(
        &self,
        attempt: u32,
        started: Instant,
        retry_after: Option<Duration>,
        error: &Error,
    ) -> Result<Duration, Error> {
        if attempt >= self.retry.max_attempts {
            debug!(attempt, "giving up: no attempts left");
            return Err(error.clone());
        }
        let delay = match retry_after {
            Some(asked) => asked.min(self.retry.max_retry_after),
            None => backoff(&self.retry, attempt),
        };
        if started.elapsed() + delay > self.retry.max_elapsed {
            debug!(attempt, "giving up: the retry time budget is spent");
            return Err(error.clone());
        }
        Ok(delay)
    }

    /// Sends `call` once.
    async fn attempt(&self, call: &Call<'_>, token: &Token) -> Attempt {
        let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", token.value.expose()))
        else {
            return Attempt::Fail(call.error(
                ErrorKind::Unauthorized,
                "the access token contains characters that cannot be sent in a header",
            ));
        };
        bearer.set_sensitive(true);
        let Ok(sandbox) = HeaderValue::from_str(call.sandbox) else {
            return Attempt::Fail(call.error(
                ErrorKind::BadRequest,
                "the sandbox name cannot be sent in a header",
            ));
        };
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .header(header::AUTHORIZATION, bearer)
            .header("x-api-key", self.api_key.clone())
            .header("x-gw-ims-org-id", self.org_id.clone())
            .header("x-sandbox-name", sandbox)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(etag) = &call.if_match {
            request = request.header(header::IF_MATCH, etag.clone());
        }
        bump(&self.stats.requests);
        trace!("sending");
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return self.transport_failure(call, e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return self.transport_failure(call, e),
        };
        debug!(
            status = status.as_u16(),
            request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            "answered"
        );
        if status.is_success() {
            return Attempt::Done(body.to_vec());
        }
        let code = status.as_u16();
        if matches!(code, 429 | 503) {
            bump(&self.stats.throttled);
        }
        let error =
            Error::from_answer(call.operation.clone(), code, &headers, &body, &call.secrets)
                .with_sandbox(call.sandbox);
        match code {
            401 => Attempt::Unauthorized(error),
            // Refusals: the request was not carried out, so even a create may repeat.
            429 | 503 => Attempt::Retry {
                error,
                retry_after: retry_after(&headers),
            },
            500 | 502 | 504 if call.repeatable() => Attempt::Retry {
                error,
                retry_after: retry_after(&headers),
            },
            // A gateway error or a crash after a create was sent: it may have been done.
            500 | 502 | 504 => Attempt::Fail(error.with_kind(ErrorKind::Ambiguous)),
            _ => Attempt::Fail(error),
        }
    }

    /// Classifies a failure without an answer: not sent (retry), sent and
    /// repeatable (retry), or sent and a create (ambiguous, never repeated here).
    fn transport_failure(&self, call: &Call<'_>, e: reqwest::Error) -> Attempt {
        let host = call.url.host_str().unwrap_or("?").to_owned();
        if e.is_builder() {
            return Attempt::Fail(
                call.error(ErrorKind::Config, "the request could not be built")
                    .with_source(e),
            );
        }
        if e.is_connect() {
            let kind = if e.is_timeout() {
                "timed out connecting"
            } else {
                "could not connect"
            };
            return Attempt::Retry {
                error: call
                    .error(ErrorKind::Connect, format!("{kind} to `{host}`"))
                    .with_source(e),
                retry_after: None,
            };
        }
        let timeout = self.request_timeout.as_secs_f64();
        let what = if e.is_timeout() {
            format!("no complete answer within {timeout}s")
        } else {
            "the connection broke before the answer was complete".to_owned()
        };
        if !call.repeatable() {
            return Attempt::Fail(
                call.error(
                    ErrorKind::Ambiguous,
                    format!(
                        "{what} after the request was sent; the connection may or may not have been created: list the sandbox before trying again"
                    ),
                )
                .with_source(e),
            );
        }
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connect
        };
        Attempt::Retry {
            error: call
                .error(kind, format!("{what} from `{host}`"))
                .with_source(e),
            retry_after: None,
        }
    }

    /// A token that is not due for renewal; renews it (one task at a time) when needed.
    async fn token(&self) -> Result<Arc<Token>, Error> {
        if let Some(token) = self.tokens.fresh() {
            return Ok(token);
        }
        let AuthConfig::ClientCredentials {
            token_url,
            client_secret,
            scopes,
        } = &self.auth
        else {
            // A ready token is installed at start and never removed.
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "use the access token",
                "the access token is not available",
            ));
        };
        let _renewal = self.tokens.renewal.lock().await;
        // Whoever held the lock before may have renewed it already.
        if let Some(token) = self.tokens.fresh() {
            return Ok(token);
        }
        if let Some(refused) = self.tokens.refused() {
            return Err(refused);
        }
        match self.fetch_token(token_url, client_secret, scopes).await {
            Ok((value, lifetime)) => Ok(self.tokens.install(value, Some(lifetime))),
            Err(e) => {
                if e.kind() == ErrorKind::Unauthorized {
                    self.tokens.set_refused(e.clone());
                }
                Err(e)
            }
        }
    }

    /// Asks IMS for a token (OAuth client credentials, form-encoded). Retries
    /// throttling, server errors and network failures; a refusal is final.
    async fn fetch_token(
        &self,
        token_url: &Url,
        client_secret: &Secret,
        scopes: &[String],
    ) -> Result<(Secret, Duration), Error> {
        let mut shown = token_url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        let operation = format!("get an access token from IMS at `{shown}`");
        let api_key = self.api_key.to_str().unwrap_or_default();
        let scope = scopes.join(",");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", api_key),
            ("client_secret", client_secret.expose()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let secrets = [client_secret.expose()];
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            bump(&self.stats.token_requests);
            let span = debug_span!("ims_token", attempt);
            let sent = async {
                let response = self
                    .http
                    .post(token_url.clone())
                    .header(header::ACCEPT, "application/json")
                    .form(&form)
                    .send()
                    .await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                debug!(status = status.as_u16(), "IMS answered");
                Ok::<_, reqwest::Error>((status, headers, body))
            }
            .instrument(span)
            .await;
            let (error, retry_after) = match sent {
                Ok((status, _, body)) if status.is_success() => {
                    let answer: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                        Error::new(
                            ErrorKind::Decode,
                            operation.clone(),
                            describe_json_error(&e),
                        )
                    })?;
                    if answer.access_token.is_blank() {
                        return Err(Error::new(
                            ErrorKind::Decode,
                            operation,
                            "IMS answered without an access token",
                        ));
                    }
                    debug!(expires_in = answer.expires_in, "got an access token");
                    return Ok((answer.access_token, Duration::from_secs(answer.expires_in)));
                }
                Ok((status, headers, body)) => {
                    let code = status.as_u16();
                    let error =
                        Error::from_answer(operation.clone(), code, &headers, &body, &secrets);
                    if matches!(code, 400 | 401 | 403) {
                        return Err(refused(error, &shown));
                    }
                    if is_retryable_status(status) {
                        (error, retry_after(&headers))
                    } else {
                        return Err(error);
                    }
                }
                Err(e) => {
                    let kind = if e.is_timeout() && !e.is_connect() {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Connect
                    };
                    let host = token_url.host_str().unwrap_or("?");
                    (
                        Error::new(kind, operation.clone(), format!("could not reach `{host}`"))
                            .with_source(e),
                        None,
                    )
                }
            };
            let delay = self.delay_before_retry(attempt, started, retry_after, &error)?;
            debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying the token request"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// The error for credentials IMS refused: clear, final, and naming what to check.
fn refused(error: Error, token_url: &Url) -> Error {
    let said = error.message().to_owned();
    let status = error.status();
    let mut refused = Error::new(
        ErrorKind::Unauthorized,
        format!("get an access token from IMS at `{token_url}`"),
        format!(
            "the client credentials were refused by IMS ({said}); check the API key (client id) and the client secret"
        ),
    );
    if let Some(status) = status {
        refused = refused.with_status(status);
    }
    refused.with_code(error.code())
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Whether `name` can go into `property=name==…` as it is.
fn filterable(name: &str) -> bool {
    !name.is_empty()
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
}

fn header_value(what: &str, value: &str) -> Result<HeaderValue, Error> {
    if value.trim().is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("the {what} `{value}` cannot be sent in a header")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> Client {
        let config = ClientConfig::new(
            Url::parse(endpoint).unwrap(),
            "ORG@AdobeOrg",
            "key",
            AuthConfig::AccessToken(Secret::new("token")),
        );
        Client::new(config).unwrap()
    }

    #[test]
    fn urls_below_the_endpoint() {
        let c = client("https://platform.adobe.io/data/foundation/flowservice");
        assert_eq!(
            c.inner.url(&["connections", "a b/c"]).as_str(),
            "https://platform.adobe.io/data/foundation/flowservice/connections/a%20b%2Fc"
        );
        let c = client("https://platform.adobe.io/data/foundation/flowservice/");
        assert_eq!(
            c.inner.url(&["connections"]).as_str(),
            "https://platform.adobe.io/data/foundation/flowservice/connections"
        );
    }

    #[test]
    fn next_page_links_resolve_below_the_endpoint() {
        let c = client("https://platform.adobe.io/data/foundation/flowservice");
        let base = "https://platform.adobe.io/data/foundation/flowservice";
        let cases = [
            (
                "/connections?continuationToken=abc",
                Some(format!("{base}/connections?continuationToken=abc")),
            ),
            (
                "connections?continuationToken=abc",
                Some(format!("{base}/connections?continuationToken=abc")),
            ),
            (
                "/data/foundation/flowservice/connections?continuationToken=abc",
                Some(format!("{base}/connections?continuationToken=abc")),
            ),
            (
                "https://platform.adobe.io/data/foundation/flowservice/connections?x=1",
                Some(format!("{base}/connections?x=1")),
            ),
            ("https://evil.example.com/connections?x=1", None),
            (
                "http://platform.adobe.io/data/foundation/flowservice/connections",
                None,
            ),
        ];
        for (href, expected) in cases {
            assert_eq!(
                c.inner.next_page(href).map(String::from),
                expected,
                "{href}"
            );
        }
    }

    #[test]
    fn names_the_filter_can_carry() {
        for (name, ok) in [
            ("sales-eu", true),
            ("Sales EU 2", true),
            ("a_b.c", true),
            ("a,b", false),
            ("a==b", false),
            ("", false),
            (" padded", false),
            ("x&y", false),
        ] {
            assert_eq!(filterable(name), ok, "{name}");
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let c = client("https://platform.adobe.io/x");
        assert!(!format!("{c:?}").contains("token\""));
    }
}
