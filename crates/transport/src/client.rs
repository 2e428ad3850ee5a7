//! The typed Flow Service API: one method per call, each a [`Call`] that
//! [`Inner::execute`] sends through the request path with the token and the
//! identity headers, renewing the token once after a 401.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atsprov_model::manifest::Auth;
use atsprov_model::wire::{
    Connection, ConnectionList, ListedId, NewConnection, PatchOp, TestResult, Written,
};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use tracing::debug;
use url::Url;

use crate::config::{ClientConfig, check_url};
use crate::error::{Error, ErrorKind, describe_json_error};
use crate::paging::Only;
use crate::request::{Answer, Exchange, Sender, Service, header_value};
use crate::scrub::connection_string_secrets;
use crate::token::{self, Token, TokenCache};

/// The Flow Service client of one organization. Cheap to clone: clones share
/// the connection pool, the token, the rate-limit gate and the counters.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientStats {
    /// Flow Service requests sent (every attempt counts).
    pub requests: u64,
    /// Retries, of Flow Service and IMS requests (renewals after a 401 excluded).
    pub retries: u64,
    /// Congestion answers seen: 429, 500, 502, 503 and 504, from Flow Service
    /// or IMS. A caller that adapts its concurrency watches this grow.
    pub throttled: u64,
    /// Requests sent to the IMS token endpoint.
    pub token_requests: u64,
}

pub(crate) struct Inner {
    pub(crate) sender: Sender,
    pub(crate) endpoint: Url,
    api_key: HeaderValue,
    org_id: HeaderValue,
    auth: Auth,
    tokens: TokenCache,
}

/// One Flow Service call.
pub(crate) struct Call<'a> {
    /// What a person reads in an error: ``create `sales-eu` ``.
    pub(crate) operation: String,
    pub(crate) sandbox: &'a str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<Bytes>,
    pub(crate) if_match: Option<HeaderValue>,
    /// Secrets in the body, blanked out of anything the server echoes.
    pub(crate) secrets: Vec<&'a str>,
}

impl Call<'_> {
    /// A GET of `url`.
    pub(crate) fn get<'a>(operation: String, sandbox: &'a str, url: Url) -> Call<'a> {
        Call {
            operation,
            sandbox,
            method: Method::GET,
            url,
            body: None,
            if_match: None,
            secrets: Vec::new(),
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, self.operation.clone(), message).with_sandbox(self.sandbox)
    }
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
            Auth::AccessToken(token) => {
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
            Auth::ClientCredentials {
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
        let sender = Sender::new(
            config.retry,
            config.limits,
            config.connect_timeout,
            config.request_timeout,
        )?;
        // The HTTP client of the endpoint now, so a stack that cannot be set
        // up fails here, before any work; the token URL's, when it needs
        // another (loopback or not), at its first call.
        sender.http_for(&endpoint)?;
        Ok(Client {
            inner: Arc::new(Inner {
                sender,
                endpoint,
                api_key,
                org_id,
                auth: config.auth,
                tokens: TokenCache::new(ready),
            }),
        })
    }

    /// Gets an access token now, so a wrong client secret shows before any work
    /// starts. With a ready token this does nothing.
    pub async fn authenticate(&self) -> Result<(), Error> {
        self.inner.token().await.map(drop)
    }

    /// Every ATS connection of `sandbox`, all pages. Connections of other
    /// specs are dropped here, whatever the server's filter did.
    pub async fn list_connections(&self, sandbox: &str) -> Result<Vec<Connection>, Error> {
        self.inner.list(sandbox, Only::All).await
    }

    /// The ATS connections of `sandbox` named exactly `name` (names are not
    /// unique), matched here over the spec-filtered listing.
    pub async fn list_connections_named(
        &self,
        sandbox: &str,
        name: &str,
    ) -> Result<Vec<Connection>, Error> {
        self.inner.list(sandbox, Only::Named(name)).await
    }

    /// The ATS connections of `sandbox` whose id is one of `ids`, all pages:
    /// one listing filtered by id (`property=id==a,b,…`; an id the filter
    /// cannot carry makes it the spec-filtered listing, matched here). The
    /// ids go into the URL: keep the list short (100 ids are about 4 KB).
    /// Listings may lag writes, unlike [`get_connection`](Self::get_connection):
    /// this is how a caller learns whether a new connection shows in them yet.
    /// Each item is read for its id, name and spec only.
    pub async fn list_connections_by_ids(
        &self,
        sandbox: &str,
        ids: &[&str],
    ) -> Result<Vec<ListedId>, Error> {
        self.inner.list(sandbox, Only::Ids(ids)).await
    }

    /// How many of the ATS connections of `sandbox` whose id is one of `ids`
    /// show in listings, counted by the server (`count=true`, no items
    /// sent). Listings may lag writes: this is how the wait after the writes
    /// learns whether new connections show yet, cheaply. Keep the list short
    /// (the ids go into the URL; 100 ids are about 4 KB).
    pub async fn count_connections_by_ids(
        &self,
        sandbox: &str,
        ids: &[&str],
    ) -> Result<usize, Error> {
        self.inner.count_by_ids(sandbox, ids).await
    }

    /// One connection by id.
    pub async fn get_connection(&self, sandbox: &str, id: &str) -> Result<Connection, Error> {
        let call = Call::get(
            format!("read connection `{id}`"),
            sandbox,
            self.inner.url(&["connections", id]),
        );
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
            body: Some(bytes.into()),
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
            body: Some(bytes.into()),
            if_match: Some(if_match),
            secrets,
        };
        self.inner.json(&call).await
    }

    /// Deletes a connection.
    pub async fn delete_connection(&self, sandbox: &str, id: &str) -> Result<(), Error> {
        let call = Call {
            method: Method::DELETE,
            ..Call::get(
                format!("delete connection `{id}`"),
                sandbox,
                self.inner.url(&["connections", id]),
            )
        };
        self.inner.execute(&call).await.map(drop)
    }

    /// Asks the service to check the stored credentials; true when they work.
    pub async fn test_connection(&self, sandbox: &str, id: &str) -> Result<bool, Error> {
        let call = Call::get(
            format!("test connection `{id}`"),
            sandbox,
            self.inner.url(&["connections", id, "test"]),
        );
        let result: TestResult = self.inner.json(&call).await?;
        Ok(result.result)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.sender.counters;
        ClientStats {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            throttled: s.congested.load(Ordering::Relaxed),
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
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        // `Client::new` checked that the endpoint can be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Runs `call` and reads its answer as `T`, strictly: a missing required
    /// field is an error, never a default.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, Error> {
        let answer = self.execute(call).await?;
        serde_json::from_slice(&answer.body).map_err(|e| {
            let error = call
                .error(ErrorKind::Decode, describe_json_error(&e))
                .with_attempts(answer.attempts);
            if call.method == Method::POST {
                // The create was carried out; only its answer is unreadable.
                error.with_kind(ErrorKind::Ambiguous).with_hint(
                    "the connection was probably created: list the sandbox before trying again",
                )
            } else {
                error
            }
        })
    }

    /// Sends `call` with a token through the request path; after a 401 the
    /// token is renewed once and the call repeated (the server refused it, so
    /// even a create may repeat).
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let mut renewed = false;
        let mut earlier_attempts = 0;
        loop {
            let token = self.token().await.map_err(|e| match e.sandbox() {
                Some(_) => e,
                None => e.with_sandbox(call.sandbox),
            })?;
            let exchange = self.exchange(call, &token)?;
            match self.sender.send(&exchange).await {
                Ok(mut answer) => {
                    answer.attempts += earlier_attempts;
                    return Ok(answer);
                }
                Err(e)
                    if e.status() == Some(401)
                        && !renewed
                        && matches!(self.auth, Auth::ClientCredentials { .. }) =>
                {
                    // The token expired early or was revoked: renew once and repeat.
                    debug!(sandbox = call.sandbox, "401: renewing the access token");
                    earlier_attempts += e.attempts();
                    renewed = true;
                    self.tokens.invalidate(token.generation);
                }
                Err(e) => {
                    let attempts = e.attempts() + earlier_attempts;
                    return Err(e.with_attempts(attempts));
                }
            }
        }
    }

    /// The request-path form of `call`, with the token and identity headers.
    fn exchange<'a>(&self, call: &Call<'a>, token: &'a Token) -> Result<Exchange<'a>, Error> {
        let bearer = token.bearer.clone().ok_or_else(|| {
            call.error(
                ErrorKind::Unauthorized,
                "the access token contains characters that cannot be sent in a header",
            )
        })?;
        let sandbox = HeaderValue::from_str(call.sandbox).map_err(|_| {
            call.error(
                ErrorKind::BadRequest,
                "the sandbox name cannot be sent in a header",
            )
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, bearer);
        headers.insert("x-api-key", self.api_key.clone());
        headers.insert("x-gw-ims-org-id", self.org_id.clone());
        headers.insert("x-sandbox-name", sandbox);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if call.body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(etag) = &call.if_match {
            headers.insert(header::IF_MATCH, etag.clone());
        }
        let mut secrets = call.secrets.clone();
        secrets.push(token.value.expose());
        Ok(Exchange {
            operation: call.operation.clone(),
            sandbox: Some(call.sandbox),
            service: Service::Flow,
            method: call.method.clone(),
            url: call.url.clone(),
            headers,
            body: call.body.clone(),
            repeatable: call.method != Method::POST,
            secrets,
            read_error: read_flow_error,
        })
    }

    /// A token that is not due for renewal; renews it (one task at a time) when needed.
    async fn token(&self) -> Result<Arc<Token>, Error> {
        if let Some(token) = self.tokens.fresh() {
            return Ok(token);
        }
        let Auth::ClientCredentials {
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
        let client_id = self.api_key.to_str().unwrap_or_default();
        match token::fetch(&self.sender, token_url, client_id, client_secret, scopes).await {
            Ok((value, lifetime)) => Ok(self.tokens.install(value, Some(lifetime))),
            Err(e) => {
                if e.kind() == ErrorKind::Unauthorized {
                    self.tokens.set_refused(e.clone());
                }
                Err(e)
            }
        }
    }
}

/// A Flow Service or gateway error answer.
fn read_flow_error(
    exchange: &Exchange<'_>,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let error = Error::from_answer(
        exchange.operation.clone(),
        status,
        headers,
        body,
        &exchange.secrets,
    );
    match exchange.sandbox {
        Some(sandbox) => error.with_sandbox(sandbox),
        None => error,
    }
}

/// A ready token for tests of this crate.
#[cfg(test)]
pub(crate) fn test_client(endpoint: &str) -> Client {
    let config = ClientConfig::new(
        Url::parse(endpoint).unwrap(),
        "ORG@AdobeOrg",
        "key",
        Auth::AccessToken(atsprov_model::Secret::new("token")),
    );
    Client::new(config).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_below_the_endpoint() {
        let c = test_client("https://platform.adobe.io/data/foundation/flowservice");
        assert_eq!(
            c.inner.url(&["connections", "a b/c"]).as_str(),
            "https://platform.adobe.io/data/foundation/flowservice/connections/a%20b%2Fc"
        );
        let c = test_client("https://platform.adobe.io/data/foundation/flowservice/");
        assert_eq!(
            c.inner.url(&["connections"]).as_str(),
            "https://platform.adobe.io/data/foundation/flowservice/connections"
        );
    }

    #[test]
    fn debug_shows_no_token() {
        let c = test_client("https://platform.adobe.io/x");
        assert!(!format!("{c:?}").contains("token\""));
    }
}
