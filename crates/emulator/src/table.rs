//! The Azure Table service imitation: `GET /{account}/Tables` checked with "Shared Key Lite".
//!
//! Only what `atsprov verify` needs: proving an account key. No table is ever stored, so a
//! request that passes the checks always lists none.

use std::time::{Duration, SystemTime};

use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use std::sync::Arc;

use axum::extract::{Request, State};

use crate::Config;
use crate::app::App;
use crate::error;

/// How far `x-ms-date` may be from the emulator's clock, either way (Azure's limit).
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The `x-ms-version` the emulator answers with.
const VERSION: &str = "2019-02-02";

const AUTH_FAILED: &str = "Server failed to authenticate the request. Make sure the value of \
     Authorization header is formed correctly including the signature.";

/// The account named by a Table path, `/{account}/Tables` with or without a trailing slash.
pub(crate) fn account_of(path: &str) -> Option<&str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let rest = path.strip_prefix('/')?;
    let (account, tail) = rest.split_once('/')?;
    (tail == "Tables" && !account.is_empty()).then_some(account)
}

/// Whether `name` can be a Table account of [`Config::table_accounts`]: ASCII letters and digits.
pub(crate) fn valid_account_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `/{account}/Tables`, any method; the body is never read.
pub(crate) async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let account = account_of(parts.uri.path()).unwrap_or_default();
    answer(&app.config, &parts, account, &error::request_id())
}

/// Answers a request to `/{account}/Tables`.
pub(crate) fn answer(config: &Config, parts: &Parts, account: &str, request_id: &str) -> Response {
    match check(config, parts, account, SystemTime::now()) {
        Ok(()) => {
            let mut response = error::json(StatusCode::OK, &json!({ "value": [] }));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;odata=nometadata"),
            );
            with_azure_headers(response, request_id)
        }
        Err(err) => err.into_response(request_id),
    }
}

/// Why a Table request is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The account is not one of [`Config::table_accounts`].
    UnknownAccount,
    /// A method other than `GET`.
    Method,
    /// `x-ms-date` is missing or not an HTTP date.
    NoDate,
    /// `Authorization` is missing or not `SharedKeyLite {account}:{signature}`.
    NoAuthorization,
    /// `x-ms-date` is more than [`MAX_CLOCK_SKEW`] away from now.
    Skew,
    /// The signature is not the one the stored key makes.
    Signature,
}

impl Refusal {
    fn into_response(self, request_id: &str) -> Response {
        let (status, code, message) = match self {
            Refusal::UnknownAccount => (
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "The specified resource does not exist.",
            ),
            Refusal::Method => (
                StatusCode::METHOD_NOT_ALLOWED,
                "UnsupportedHttpVerb",
                "The resource doesn't support specified Http Verb.",
            ),
            _ => (StatusCode::FORBIDDEN, "AuthenticationFailed", AUTH_FAILED),
        };
        // Azure gives the detail only in XML answers; the emulator adds it to the message so
        // a failing test says why. It never repeats a header's value.
        let detail = match self {
            Refusal::NoDate => "\nDetail: the x-ms-date header is missing or not an RFC 1123 date.",
            Refusal::NoAuthorization => {
                "\nDetail: the Authorization header is missing or not `SharedKeyLite account:signature`."
            }
            Refusal::Skew => {
                "\nDetail: the x-ms-date header is more than 15 minutes away from the server's time."
            }
            Refusal::Signature => {
                "\nDetail: the signature is not the one computed with the account key."
            }
            _ => "",
        };
        let body = json!({
            "odata.error": {
                "code": code,
                "message": {
                    "lang": "en-US",
                    "value": format!("{message}\nRequestId:{request_id}{detail}"),
                },
            },
        });
        let mut response = error::json(status, &body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;odata=nometadata"),
        );
        response
            .headers_mut()
            .insert("x-ms-error-code", HeaderValue::from_static(code));
        if self == Refusal::Method {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        with_azure_headers(response, request_id)
    }
}

fn with_azure_headers(mut response: Response, request_id: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-ms-request-id", value);
    }
    headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
    response
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The checks, in order: account, method, `x-ms-date`, `Authorization`'s shape, clock skew,
/// signature.
fn check(config: &Config, parts: &Parts, account: &str, now: SystemTime) -> Result<(), Refusal> {
    let key = config
        .table_accounts
        .iter()
        .find(|(name, _)| name == account)
        .map(|(_, key)| key)
        .ok_or(Refusal::UnknownAccount)?;
    if parts.method != Method::GET {
        return Err(Refusal::Method);
    }
    let date_text = header(parts, "x-ms-date").ok_or(Refusal::NoDate)?;
    let date = httpdate::parse_http_date(date_text).map_err(|_| Refusal::NoDate)?;
    let given = header(parts, "authorization").ok_or(Refusal::NoAuthorization)?;
    let well_formed = given
        .strip_prefix("SharedKeyLite ")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(name, signature)| !name.is_empty() && !signature.is_empty());
    if !well_formed {
        return Err(Refusal::NoAuthorization);
    }
    let skew = match now.duration_since(date) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > MAX_CLOCK_SKEW {
        return Err(Refusal::Skew);
    }
    // The header value as sent (not trimmed) is what was signed over.
    let raw_date = parts
        .headers
        .get("x-ms-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(date_text);
    let path = parts.uri.path();
    if atsprov_model::sharedkey::authorization_matches(account, key, raw_date, path, given)
        .map_err(|_| Refusal::Signature)?
    {
        Ok(())
    } else {
        Err(Refusal::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atsprov_model::Secret;
    use axum::http::Request;

    const KEY: &str = "a2V5LWZvci10ZXN0cw==";

    fn config() -> Config {
        Config {
            table_accounts: vec![("acct".to_owned(), Secret::new(KEY))],
            ..Config::default()
        }
    }

    fn parts(method: Method, path: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn signed(date: &str, path: &str) -> String {
        atsprov_model::sharedkey::authorization("acct", &Secret::new(KEY), date, path)
            .unwrap()
            .expose()
            .to_owned()
    }

    #[test]
    fn table_paths_name_their_account() {
        assert_eq!(account_of("/acct/Tables"), Some("acct"));
        assert_eq!(account_of("/acct/Tables/"), Some("acct"));
        for path in [
            "/Tables",
            "//Tables",
            "/acct/tables",
            "/a/b/Tables",
            "/acct/Tables//",
        ] {
            assert_eq!(account_of(path), None, "{path}");
        }
    }

    #[test]
    fn checks_come_in_order() {
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let auth = signed(&date, "/acct/Tables");
        let good = [
            ("x-ms-date", date.as_str()),
            ("authorization", auth.as_str()),
        ];
        let config = config();
        let run = |method: Method, path: &str, account: &str, headers: &[(&str, &str)]| {
            check(&config, &parts(method, path, headers), account, now)
        };
        assert_eq!(
            run(Method::GET, "/acct/Tables?$top=1", "acct", &good),
            Ok(())
        );
        assert_eq!(
            run(Method::GET, "/other/Tables", "other", &good),
            Err(Refusal::UnknownAccount)
        );
        assert_eq!(
            run(Method::POST, "/acct/Tables", "acct", &good),
            Err(Refusal::Method)
        );
        assert_eq!(
            run(Method::GET, "/acct/Tables", "acct", &good[1..]),
            Err(Refusal::NoDate)
        );
        assert_eq!(
            run(
                Method::GET,
                "/acct/Tables",
                "acct",
                &[("x-ms-date", "yesterday"), good[1]]
            ),
            Err(Refusal::NoDate)
        );
        assert_eq!(
            run(Method::GET, "/acct/Tables", "acct", &good[..1]),
            Err(Refusal::NoAuthorization)
        );
        assert_eq!(
            run(
                Method::GET,
                "/acct/Tables",
                "acct",
                &[good[0], ("authorization", "SharedKey acct:abc")]
            ),
            Err(Refusal::NoAuthorization)
        );
        let future = httpdate::fmt_http_date(now + Duration::from_secs(16 * 60));
        let auth_future = signed(&future, "/acct/Tables");
        assert_eq!(
            run(
                Method::GET,
                "/acct/Tables",
                "acct",
                &[("x-ms-date", &future), ("authorization", &auth_future)]
            ),
            Err(Refusal::Skew)
        );
        // Signed over another path.
        assert_eq!(
            run(Method::GET, "/acct/Tables/", "acct", &good),
            Err(Refusal::Signature)
        );
    }
}
