//! The shared access token: one per client, fetched from IMS through the
//! request path, renewed before it expires and after a 401, by one task at a
//! time (single flight).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atsprov_model::Secret;
use atsprov_model::wire::TokenResponse;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tracing::debug;
use url::Url;

use crate::error::{Error, ErrorKind, describe_json_error};
use crate::request::{Exchange, Sender, Service};

/// The longest lifetime believed: IMS tokens live 24 hours.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Below this (IMS speaks whole seconds: a lifetime of 0 or less) a token is
/// used for the one call that fetched it and renewed for the next: sharing
/// it would only hand out tokens that expired already. Each renewal serves a
/// call, so a zero lifetime never spins.
const MIN_SHARED_LIFETIME: Duration = Duration::from_secs(1);

/// The lifetime IMS announced, clamped to `0..=24h` (a negative, zero or
/// absurd value cannot overflow a clock or make a renewal loop).
pub(crate) fn clamp_lifetime(expires_in: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires_in).unwrap_or(0)).min(MAX_LIFETIME)
}

/// A token and when to stop using it.
pub(crate) struct Token {
    pub(crate) value: Secret,
    /// `Bearer {value}`, made once (marked sensitive, so never printed);
    /// `None` when the token holds characters a header cannot carry.
    pub(crate) bearer: Option<HeaderValue>,
    /// When to renew: the expiry minus a margin. `None` for a ready token,
    /// which cannot be renewed.
    renew_at: Option<Instant>,
    /// Tells apart the tokens one client held, so a 401 answered to an old
    /// token does not throw away a newer one.
    pub(crate) generation: u64,
}

/// The cache. Readers take the std lock briefly; renewal holds the tokio
/// `renewal` lock across the IMS call so concurrent callers wait for its result
/// instead of asking IMS themselves.
pub(crate) struct TokenCache {
    current: Mutex<Option<Arc<Token>>>,
    /// Set once IMS refused the client credentials: every later call fails
    /// the same way without asking again.
    refused: Mutex<Option<Error>>,
    pub(crate) renewal: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl TokenCache {
    pub(crate) fn new(ready: Option<Secret>) -> Self {
        let cache = Self {
            current: Mutex::new(None),
            refused: Mutex::new(None),
            renewal: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
        };
        if let Some(value) = ready {
            cache.install(value, None);
        }
        cache
    }

    /// The current token, if there is one and it is not due for renewal.
    pub(crate) fn fresh(&self) -> Option<Arc<Token>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
            .cloned()
    }

    /// Stores a new token that lives `lifetime` (none: forever) and returns
    /// it. A lifetime under a second makes a token nobody else reuses.
    pub(crate) fn install(&self, value: Secret, lifetime: Option<Duration>) -> Arc<Token> {
        let now = Instant::now();
        let renew_at = lifetime.map(|l| {
            let l = l.min(MAX_LIFETIME);
            if l < MIN_SHARED_LIFETIME {
                now
            } else {
                now + l.saturating_sub(renewal_margin(l))
            }
        });
        let bearer = HeaderValue::from_str(&format!("Bearer {}", value.expose()))
            .ok()
            .map(|mut bearer| {
                bearer.set_sensitive(true);
                bearer
            });
        let token = Arc::new(Token {
            value,
            bearer,
            renew_at,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        token
    }

    /// Forgets the token of `generation` after a 401; a newer token stays.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    pub(crate) fn refused(&self) -> Option<Error> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_refused(&self, error: Error) {
        *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// Asks IMS for a token (OAuth client credentials, form-encoded) through the
/// request path: throttling, server errors and network failures are retried;
/// a refusal (400, 401, 403) is final and says what to check.
pub(crate) async fn fetch(
    sender: &Sender,
    token_url: &Url,
    client_id: &str,
    client_secret: &Secret,
    scopes: &[String],
) -> Result<(Secret, Duration), Error> {
    let mut shown = token_url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let operation = format!("get an access token from IMS at `{shown}`");
    let form = {
        // Built in a block: the serializer must not live across an await.
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret.expose());
        if !scopes.is_empty() {
            form.append_pair("scope", &scopes.join(","));
        }
        form.finish()
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let exchange = Exchange {
        operation: operation.clone(),
        sandbox: None,
        service: Service::Ims,
        method: Method::POST,
        url: token_url.clone(),
        headers,
        body: Some(form.into_bytes().into()),
        // Asking for a token twice is harmless.
        repeatable: true,
        secrets: vec![client_secret.expose()],
        read_error: read_ims_error,
    };
    let answer = sender.send(&exchange).await?;
    let token: TokenResponse = serde_json::from_slice(&answer.body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            operation.clone(),
            describe_json_error(&e),
        )
        .with_attempts(answer.attempts)
    })?;
    if token.access_token.is_blank() {
        return Err(Error::new(
            ErrorKind::Decode,
            operation,
            "IMS answered without an access token",
        ));
    }
    debug!(expires_in = token.expires_in, "got an access token");
    Ok((token.access_token, clamp_lifetime(token.expires_in)))
}

/// IMS errors: a refusal of the credentials or scopes is final and says what
/// to check; anything else reads as any Adobe error.
fn read_ims_error(exchange: &Exchange<'_>, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let error = Error::from_answer(
        exchange.operation.clone(),
        status,
        headers,
        body,
        &exchange.secrets,
    );
    if !matches!(status, 400 | 401 | 403) {
        return error;
    }
    // IMS's codes are words (`invalid_client`); a number is the API
    // gateway's, so the token URL is not IMS's (the Flow Service's, say).
    if error
        .code()
        .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
    {
        return Error::new(
            ErrorKind::Unauthorized,
            exchange.operation.clone(),
            format!(
                "the token URL did not answer as IMS does ({})",
                error.message()
            ),
        )
        .with_status(status)
        .with_code(error.code())
        .with_hint(format!(
            "check `auth.token_url`: Adobe's is {}",
            atsprov_model::wire::DEFAULT_TOKEN_URL
        ));
    }
    let hint = error
        .hint()
        .unwrap_or("check the API key (client id) and the client secret")
        .to_owned();
    let mut refused = Error::new(
        ErrorKind::Unauthorized,
        exchange.operation.clone(),
        format!(
            "the client credentials were refused by IMS ({})",
            error.message()
        ),
    )
    .with_status(status)
    .with_code(error.code())
    .with_hint(hint);
    if let Some(id) = error.request_id() {
        refused = refused.with_request_id(id);
    }
    refused
}

/// How long before expiry a token is renewed: a tenth of its life, at most
/// five minutes (24-hour IMS tokens are renewed 5 minutes early).
fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        assert_eq!(
            renewal_margin(Duration::from_secs(86_399)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(renewal_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn expired_and_invalidated_tokens_are_not_fresh() {
        let cache = TokenCache::new(None);
        assert!(cache.fresh().is_none());
        cache.install(Secret::new("a"), Some(Duration::ZERO));
        assert!(cache.fresh().is_none(), "a zero lifetime is due at once");
        let b = cache.install(Secret::new("b"), Some(Duration::from_secs(3600)));
        assert_eq!(cache.fresh().unwrap().value.expose(), "b");
        cache.invalidate(b.generation - 1);
        assert!(
            cache.fresh().is_some(),
            "an older generation leaves the newer token"
        );
        cache.invalidate(b.generation);
        assert!(cache.fresh().is_none());
    }

    #[test]
    fn lifetimes_are_clamped() {
        for (expires_in, seconds) in [
            (86_399, 86_399),
            (90_000, 86_400),
            (i64::MAX, 86_400),
            (0, 0),
            (-5, 0),
            (i64::MIN, 0),
        ] {
            assert_eq!(
                clamp_lifetime(expires_in),
                Duration::from_secs(seconds),
                "{expires_in}"
            );
        }
    }

    #[test]
    fn short_lived_tokens_are_used_once() {
        let cache = TokenCache::new(None);
        let token = cache.install(Secret::new("brief"), Some(Duration::from_millis(999)));
        assert_eq!(token.value.expose(), "brief", "the fetcher gets it");
        assert!(cache.fresh().is_none(), "nobody else reuses it");
        cache.install(Secret::new("long"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(cache.fresh().unwrap().value.expose(), "long");
    }

    #[test]
    fn ready_tokens_never_expire() {
        let cache = TokenCache::new(Some(Secret::new("ready")));
        assert_eq!(cache.fresh().unwrap().value.expose(), "ready");
    }
}
