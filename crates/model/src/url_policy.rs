//! Which URLs atsprov may send credentials to: `https://` anywhere, plain
//! `http://` only to a loopback host, never a URL carrying a user or password.
//!
//! The one policy for the manifest's checks and the transport's: both call
//! [`check`] (or [`is_loopback`]), so a URL the loader accepts is a URL the
//! client sends to, and the other way round.
//!
//! Loopback means what cannot leave the machine whatever the resolver says:
//! `127.0.0.0/8`, `::1`, an IPv4-mapped `::ffff:127.x.y.z`, and the name
//! `localhost` (any case, with or without the root dot `localhost.`).
//! Sub-names such as `app.localhost` are refused: RFC 6761 asks resolvers to
//! map them to loopback, but nothing guarantees a given resolver does.
//! `0.0.0.0` and `::` are refused: they mean "this host, any interface".

use std::fmt;

use url::{Host, Url};

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// `user:password@` in the URL.
    Credentials,
    /// Not a URL with a host (`mailto:`, `file:///`, …).
    NoHost,
    /// `http://` to a host that is not loopback.
    PlainHttp {
        /// The host, as written in the URL.
        host: String,
    },
    /// A scheme other than http or https.
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// A query or fragment in an endpoint (see [`check_endpoint`]).
    Query,
}

impl UrlRefusal {
    /// What to do about it, one short sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            UrlRefusal::Credentials => "remove the `user:password@` part",
            UrlRefusal::NoHost | UrlRefusal::Scheme { .. } => "use an https URL",
            UrlRefusal::PlainHttp { .. } => {
                "use https (plain http is accepted for 127.0.0.0/8, ::1 and localhost)"
            }
            UrlRefusal::Query => {
                "remove everything from the `?` or `#` on: an endpoint is a scheme, host and path"
            }
        }
    }
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlRefusal::Credentials => {
                f.write_str("the URL must not contain a user name or password")
            }
            UrlRefusal::NoHost => f.write_str("the URL has no host"),
            UrlRefusal::PlainHttp { host } => {
                write!(
                    f,
                    "`http` is allowed only for a loopback host, found host `{host}`"
                )
            }
            UrlRefusal::Scheme { scheme } => {
                write!(f, "expected an http or https URL, found scheme `{scheme}`")
            }
            UrlRefusal::Query => f.write_str(
                "the URL must not have a query or fragment (a query can hold a signature, a secret)",
            ),
        }
    }
}

/// Checks `url` against the policy.
pub fn check(url: &Url) -> Result<(), UrlRefusal> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    match url.scheme() {
        "https" | "http" if url.cannot_be_a_base() || url.host().is_none() => {
            Err(UrlRefusal::NoHost)
        }
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(UrlRefusal::PlainHttp {
            host: url.host_str().unwrap_or_default().to_owned(),
        }),
        other => Err(UrlRefusal::Scheme {
            scheme: other.to_owned(),
        }),
    }
}

/// [`check`], for a configured endpoint (`platform.endpoint`,
/// `auth.token_url`, `table_endpoint`, a connection string's
/// `TableEndpoint`): also no query or fragment. None is needed, and a query
/// such as a SAS `?sig=…` is a secret that would be shown with the endpoint.
pub fn check_endpoint(url: &Url) -> Result<(), UrlRefusal> {
    check(url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlRefusal::Query);
    }
    Ok(())
}

/// True when `url`'s host is loopback (see the module docs for what counts).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
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

/// `url` as it may be shown: a `user:password@` part reads `***@`.
///
/// For output only; the policy ([`check`]) refuses such a URL anyway, but a
/// URL that reached a message some other way must not give a password away.
pub fn shown(url: &Url) -> String {
    if !url.has_host() && url.as_str().contains('@') {
        // `u:password@host` parses as scheme `u` and a path.
        return "***".to_owned();
    }
    let hidden_query = url.query().is_some() || url.fragment().is_some();
    if url.username().is_empty() && url.password().is_none() && !hidden_query {
        return url.as_str().to_owned();
    }
    let mut shown = url.clone();
    // A query can hold a signature (a SAS `?sig=…`).
    if url.query().is_some() {
        shown.set_query(Some("***"));
    }
    shown.set_fragment(None);
    if url.username().is_empty() && url.password().is_none() {
        return shown.as_str().to_owned();
    }
    if shown.set_password(None).is_ok() && shown.set_username("***").is_ok() {
        shown.as_str().to_owned()
    } else {
        "***".to_owned()
    }
}

/// Text that should be a URL (say, read back from a server) as it may be
/// shown: a URL as [`shown`] shows it; other text as it is, unless it holds
/// an `@`, when it is `***` (where a password would end cannot be told).
pub fn shown_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => shown(&url),
        Err(_) if text.contains('@') => "***".to_owned(),
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_as_a_table() {
        // (url, accepted, loopback)
        let cases = [
            (
                "https://platform.adobe.io/data/foundation/flowservice",
                true,
                false,
            ),
            ("https://example.com", true, false),
            ("https://127.0.0.1/", true, true),
            ("http://127.0.0.1:8080/x", true, true),
            ("http://127.9.8.7/", true, true),
            ("http://127.1/", true, true),
            ("http://2130706433/", true, true),
            ("http://[::1]:80/", true, true),
            ("http://[::ffff:127.0.0.1]/", true, true),
            ("http://[0:0:0:0:0:0:0:1]/", true, true),
            ("http://localhost:1234", true, true),
            ("http://LOCALHOST./", true, true),
            ("http://localhost./", true, true),
            ("http://platform.adobe.io/", false, false),
            ("http://10.0.0.1/", false, false),
            ("http://0.0.0.0/", false, false),
            ("http://[::]/", false, false),
            ("http://[::ffff:10.0.0.1]/", false, false),
            ("http://localhost.example.com/", false, false),
            ("http://app.localhost/", false, false),
            ("http://localhost../", false, false),
            ("http://[::2]/", false, false),
            ("ftp://127.0.0.1/", false, true),
            ("file:///etc/passwd", false, false),
            ("https://user:pw@example.com/", false, false),
            ("http://user@127.0.0.1/", false, true),
        ];
        for (text, accepted, loopback) in cases {
            let url = Url::parse(text).unwrap();
            assert_eq!(check(&url).is_ok(), accepted, "{text}: {:?}", check(&url));
            assert_eq!(is_loopback(&url), loopback, "{text}");
        }
    }

    #[test]
    fn endpoints_have_no_query_or_fragment() {
        for text in [
            "https://acct.table.core.windows.net/?sv=2022&sig=SECRETSIG",
            "https://platform.adobe.io/data/foundation/flowservice?x=1",
            "http://127.0.0.1:8080/ims/token/v3#frag",
        ] {
            let url = Url::parse(text).unwrap();
            assert_eq!(check(&url), Ok(()), "{text}");
            let refusal = check_endpoint(&url).unwrap_err();
            assert_eq!(refusal, UrlRefusal::Query, "{text}");
            assert!(!format!("{refusal} {}", refusal.hint()).contains("SECRETSIG"));
        }
        let plain = Url::parse("https://platform.adobe.io/data/foundation/flowservice").unwrap();
        assert_eq!(check_endpoint(&plain), Ok(()));
    }

    #[test]
    fn refusals_say_what_and_what_to_do_without_the_password() {
        let cases = [
            ("https://user:pw@example.com/", UrlRefusal::Credentials),
            (
                "http://platform.adobe.io/x",
                UrlRefusal::PlainHttp {
                    host: "platform.adobe.io".into(),
                },
            ),
            (
                "ftp://x.example/",
                UrlRefusal::Scheme {
                    scheme: "ftp".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            let refusal = check(&Url::parse(text).unwrap()).unwrap_err();
            assert_eq!(refusal, expected);
            let said = format!("{refusal} {}", refusal.hint());
            assert!(!said.contains("pw"), "{said}");
        }
    }

    #[test]
    fn shown_urls_never_carry_a_user_or_password() {
        let cases = [
            ("https://example.com/a", "https://example.com/a"),
            (
                "http://u:SECRETPW@10.1.1.1/saleseu",
                "http://***@10.1.1.1/saleseu",
            ),
            (
                "http://TOKEN@127.0.0.1:10002/x",
                "http://***@127.0.0.1:10002/x",
            ),
            ("https://:SECRETPW@example.com/", "https://***@example.com/"),
            ("ftp://u:SECRETPW@example.com/", "ftp://***@example.com/"),
            ("https://example.com/path@x", "https://example.com/path@x"),
            (
                "https://acct.table.core.windows.net/?sv=2022&sig=SECRETSIG",
                "https://acct.table.core.windows.net/?***",
            ),
            ("https://example.com/a#part", "https://example.com/a"),
        ];
        for (text, expected) in cases {
            assert_eq!(shown(&Url::parse(text).unwrap()), expected, "{text}");
            assert_eq!(shown_text(text), expected, "{text}");
        }
        // Text that is not a URL: shown unless it could hold a password.
        assert_eq!(shown_text("not a url"), "not a url");
        assert_eq!(shown_text("http://u:SECRET/PW@h"), "***");
        assert_eq!(shown_text("u:SECRETPW@host"), "***");
        assert_eq!(shown_text("mailto:u@example.com"), "***");
    }
}
