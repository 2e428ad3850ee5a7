//! How to reach the Flow Service and IMS: endpoint, identity, credentials, retries and timeouts.

use std::net::IpAddr;
use std::time::Duration;

use atsprov_model::Secret;
use url::{Host, Url};

use crate::error::{Error, ErrorKind};

/// Everything [`crate::Client::new`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The Flow Service base URL, e.g. `https://platform.adobe.io/data/foundation/flowservice`.
    pub endpoint: Url,
    /// The IMS organization, `…@AdobeOrg`, sent as `x-gw-ims-org-id`.
    pub org_id: String,
    /// The API key, sent as `x-api-key`; also the OAuth client id.
    pub api_key: String,
    /// How to get an access token.
    pub auth: AuthConfig,
    /// When and how often failed calls are repeated.
    pub retry: RetryPolicy,
    /// How long establishing a connection may take (TCP and TLS).
    pub connect_timeout: Duration,
    /// How long a whole request may take, from sending to the last byte of the answer.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with default retries (see [`RetryPolicy::default`]), a 10 s
    /// connect timeout and a 60 s request timeout.
    pub fn new(
        endpoint: Url,
        org_id: impl Into<String>,
        api_key: impl Into<String>,
        auth: AuthConfig,
    ) -> Self {
        Self {
            endpoint,
            org_id: org_id.into(),
            api_key: api_key.into(),
            auth,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// How the client gets its access token.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// A ready token; it cannot be renewed, so a 401 is final.
    AccessToken(Secret),
    /// OAuth Server-to-Server client credentials; the client id is the API key.
    ClientCredentials {
        /// The IMS token URL, e.g. `https://ims-na1.adobelogin.com/ims/token/v3`.
        token_url: Url,
        /// The client secret.
        client_secret: Secret,
        /// The scopes, sent comma-separated.
        scopes: Vec<String>,
    },
}

/// When and how often a failed call is repeated.
///
/// Retried: 429, 500, 502, 503 and 504 answers (a create only on 429 and 503),
/// connections that failed before the request was sent, and timeouts or
/// dropped connections of calls that are safe to repeat (GET, DELETE, PATCH
/// with `If-Match`). Delays grow exponentially with full jitter; a
/// `Retry-After` answer replaces the computed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 means never retry.
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

/// Refuses URLs atsprov must not send credentials to: plain `http://` to a
/// host that is not loopback, other schemes, and URLs carrying a user or password.
pub(crate) fn check_url(what: &str, url: &Url) -> Result<(), Error> {
    let fail = |message: String| Err(Error::config(message));
    if !url.username().is_empty() || url.password().is_some() {
        return fail(format!(
            "the {what} must not carry a user name or password; put credentials in the auth settings"
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return fail(format!(
            "the {what} `{url}` is not an http(s) URL with a host"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => fail(format!(
            "the {what} `{url}` uses http:// to a host that is not loopback; use https:// \
             (http:// is allowed only for 127.0.0.0/8, ::1 and localhost)"
        )),
        other => fail(format!(
            "the {what} `{url}` has scheme `{other}`; expected https://"
        )),
    }
}

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(Host::Domain(domain)) => {
            let domain = domain.strip_suffix('.').unwrap_or(domain);
            domain.eq_ignore_ascii_case("localhost")
        }
        None => false,
    }
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

    fn check(url: &str) -> Result<(), Error> {
        check_url("endpoint", &Url::parse(url).unwrap())
    }

    #[test]
    fn http_only_for_loopback() {
        let cases = [
            (
                "https://platform.adobe.io/data/foundation/flowservice",
                true,
            ),
            ("https://example.com", true),
            ("http://127.0.0.1:8080/x", true),
            ("http://127.9.8.7/", true),
            ("http://[::1]:80/", true),
            ("http://localhost:1234", true),
            ("http://LOCALHOST./", true),
            ("http://platform.adobe.io/", false),
            ("http://10.0.0.1/", false),
            ("http://localhost.example.com/", false),
            ("http://[::2]/", false),
            ("ftp://127.0.0.1/", false),
            ("https://user:pw@example.com/", false),
        ];
        for (url, ok) in cases {
            let result = check(url);
            assert_eq!(result.is_ok(), ok, "{url}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.kind(), ErrorKind::Config);
                assert!(!e.to_string().contains("pw"), "{e}");
            }
        }
    }

    #[test]
    fn refusal_names_the_url_and_the_fix() {
        let e = check("http://platform.adobe.io/x").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("`http://platform.adobe.io/x`"), "{text}");
        assert!(text.contains("use https://"), "{text}");
    }
}
