//! How to reach the Flow Service and IMS: endpoint, identity, credentials,
//! retries, timeouts and the bounds put on what a server may send.

use std::time::Duration;

use atsprov_model::manifest::Auth;
use atsprov_model::url_policy;
use url::Url;

use crate::error::{Error, ErrorKind};

/// The `User-Agent` of every request atsprov sends.
pub(crate) const USER_AGENT: &str = concat!("atsprov/", env!("CARGO_PKG_VERSION"));

/// Everything [`crate::Client::new`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The Flow Service base URL, e.g. `https://platform.adobe.io/data/foundation/flowservice`.
    pub endpoint: Url,
    /// The IMS organization, `…@AdobeOrg`, sent as `x-gw-ims-org-id`.
    pub org_id: String,
    /// The API key, sent as `x-api-key`; also the OAuth client id.
    pub api_key: String,
    /// How to get an access token: the manifest's own `auth`.
    pub auth: Auth,
    /// When and how often failed calls are repeated.
    pub retry: RetryPolicy,
    /// The most a server may send.
    pub limits: Limits,
    /// How long establishing a connection may take (TCP and TLS).
    pub connect_timeout: Duration,
    /// How long one attempt may take in all, from sending to the last byte of
    /// the answer (connecting included).
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with default retries ([`RetryPolicy::default`]), default
    /// limits ([`Limits::default`]), a 10 s connect timeout and a 60 s request timeout.
    pub fn new(
        endpoint: Url,
        org_id: impl Into<String>,
        api_key: impl Into<String>,
        auth: Auth,
    ) -> Self {
        Self {
            endpoint,
            org_id: org_id.into(),
            api_key: api_key.into(),
            auth,
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// When and how often a failed call is repeated. One policy for every call:
/// Flow Service, IMS and the Table key check.
///
/// Retried: 429 and 503 answers (the server refused the request before doing
/// anything, so even a create may repeat); 500, 502 and 504 answers, timeouts
/// and dropped connections of calls that are safe to repeat (GET, DELETE,
/// PATCH with `If-Match`, the IMS token request); connections that failed
/// before the request was sent. A create that got 500, 502 or 504, or lost its
/// answer, is never repeated: it is [`ErrorKind::Ambiguous`]. Delays grow
/// exponentially with full jitter; a `Retry-After` answer (seconds or an HTTP
/// date) replaces the computed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 means never retry. An
    /// attempt answered 429 (not carried out: "come back later") does not
    /// use one up, so a tight rate limit slows calls instead of failing
    /// them; they have a budget of their own, four times this, and
    /// `max_elapsed` still bounds them.
    pub max_attempts: u32,
    /// The delay cap of the first retry; doubled for each further retry.
    pub base_delay: Duration,
    /// The largest computed delay.
    pub max_delay: Duration,
    /// No retry starts when it would end later than this after the first attempt.
    pub max_elapsed: Duration,
    /// The longest `Retry-After` honoured; longer values are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 200 ms base, 10 s max delay, 120 s in all, `Retry-After` capped at 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The most a server may send before atsprov stops reading and reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest answer body read, in bytes; larger fails as soon as the
    /// cap is crossed (or at once, from `Content-Length`).
    pub max_body_bytes: usize,
    /// The most pages one listing follows.
    pub max_pages: u32,
    /// The most connections one listing collects.
    pub max_items: usize,
}

impl Default for Limits {
    /// 8 MiB per body: a full page of 1,000 connections is about 1 MiB and an
    /// IMS token answer a few KiB, so 8 MiB is far above any real answer while
    /// keeping a hostile one from costing more than that in memory.
    /// 1,000 pages and 200,000 connections per listing: at the documented
    /// page size of 1,000 that is far above any real sandbox, and it ends a
    /// server that pages forever.
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_pages: 1_000,
            max_items: 200_000,
        }
    }
}

/// Refuses URLs atsprov must not send credentials to (the policy of
/// [`atsprov_model::url_policy`]).
pub(crate) fn check_url(what: &str, url: &Url) -> Result<(), Error> {
    url_policy::check_endpoint(url).map_err(|refusal| {
        // Never repeat a user or password back.
        let shown = url_policy::shown(url);
        Error::config(format!("the {what} `{shown}`: {refusal}")).with_hint(refusal.hint())
    })
}

impl Error {
    pub(crate) fn config(message: String) -> Self {
        Error::new(
            ErrorKind::Config,
            "configure the Flow Service client",
            message,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_the_url_and_the_fix_never_the_password() {
        let e = check_url(
            "endpoint",
            &Url::parse("http://platform.adobe.io/x").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.to_string().contains("`http://platform.adobe.io/x`"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("use https"), "{e:?}");
        let e = check_url(
            "endpoint",
            &Url::parse("https://user:pw@example.com/").unwrap(),
        )
        .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("pw"), "{e}");
        let e = check_url(
            "endpoint",
            &Url::parse("https://TOKEN@example.com/").unwrap(),
        )
        .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("TOKEN"), "{e}");
        assert!(e.to_string().contains("`https://***@example.com/`"), "{e}");
    }
}
