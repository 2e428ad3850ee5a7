//! The transport's error: what failed, how a caller may react ([`ErrorKind`]),
//! and what Adobe said (status, code, message, request id).

use std::fmt;
use std::sync::Arc;

use atsprov_model::wire::{FlowErrorBody, GatewayErrorBody, ImsErrorBody};
use reqwest::header::HeaderMap;

use crate::scrub::scrub;

/// What kind of failure an [`Error`] is; callers match on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404: the connection (or sandbox) does not exist.
    NotFound,
    /// 412: the etag is stale; read the connection again.
    PreconditionFailed,
    /// 401, or IMS refused the client credentials.
    Unauthorized,
    /// 403: the credentials lack a permission.
    Forbidden,
    /// 400 and other 4xx answers: the request itself is wrong.
    BadRequest,
    /// 429 after every retry.
    RateLimited,
    /// 5xx after every retry.
    Server,
    /// No answer in time for a call that is safe to repeat, after every retry.
    Timeout,
    /// The connection could not be made or broke, after every retry.
    Connect,
    /// A create was sent but its outcome is unknown; look before trying again.
    Ambiguous,
    /// The client configuration is unusable; nothing was sent.
    Config,
    /// The answer could not be read.
    Decode,
}

/// A failed Flow Service or IMS call.
///
/// Its `Display` is one line a person can act on, e.g.
/// ``create `sales-eu` in sandbox `prod`: HTTP 412 FLOW-1404-412 Version not matching (request id abc-123)``.
/// It never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    // Boxed so `Result<T, Error>` stays small on the happy path.
    details: Box<Details>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone)]
struct Details {
    kind: ErrorKind,
    operation: String,
    sandbox: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    hint: Option<String>,
    attempts: u32,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.details.kind
    }

    /// The HTTP status of the answer, when one came.
    pub fn status(&self) -> Option<u16> {
        self.details.status
    }

    /// Adobe's error code: `FLOW-1404-412`, `401013`, `invalid_client`, …
    pub fn code(&self) -> Option<&str> {
        self.details.code.as_deref()
    }

    /// The request id the server gave (`x-request-id` or the error report).
    pub fn request_id(&self) -> Option<&str> {
        self.details.request_id.as_deref()
    }

    /// The sandbox the call was made in.
    pub fn sandbox(&self) -> Option<&str> {
        self.details.sandbox.as_deref()
    }

    /// The message alone: Adobe's, or the transport's description of the failure.
    pub fn message(&self) -> &str {
        &self.details.message
    }

    /// What to do about it, when there is something to say: one sentence
    /// meant for a line of its own under the error. Not part of `Display`.
    pub fn hint(&self) -> Option<&str> {
        self.details.hint.as_deref()
    }

    /// How many HTTP attempts the failed call made, retries included (0 when
    /// it failed before sending anything).
    pub fn attempts(&self) -> u32 {
        self.details.attempts
    }

    pub(crate) fn new(
        kind: ErrorKind,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            details: Box::new(Details {
                kind,
                operation: operation.into(),
                sandbox: None,
                status: None,
                code: None,
                message: message.into(),
                request_id: None,
                hint: None,
                attempts: 0,
            }),
            source: None,
        }
    }

    pub(crate) fn with_sandbox(mut self, sandbox: &str) -> Self {
        self.details.sandbox = Some(sandbox.to_owned());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.details.status = Some(status);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn with_code(mut self, code: Option<&str>) -> Self {
        self.details.code = code.map(str::to_owned);
        self
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.details.kind = kind;
        self
    }

    pub(crate) fn with_request_id(mut self, id: &str) -> Self {
        self.details.request_id = Some(id.to_owned());
        self
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.details.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.details.attempts = attempts;
        self
    }

    /// An error from an HTTP answer that is not a success: status, and code,
    /// message and request id parsed from either Adobe error shape. Any of
    /// `secrets` the server echoed back is blanked out.
    pub(crate) fn from_answer(
        operation: impl Into<String>,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&str],
    ) -> Self {
        let parsed = ParsedBody::parse(body);
        let request_id = parsed.request_id.or_else(|| {
            ["x-request-id", "x-adobe-request-id"]
                .iter()
                .find_map(|name| headers.get(*name)?.to_str().ok())
                .map(str::to_owned)
        });
        let message = parsed.message.unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned()
        });
        let code = parsed.code.map(|c| one_line(&scrub(&c, secrets), 80));
        let operation = operation.into();
        let hint = code
            .as_deref()
            .and_then(hint_for_code)
            .or_else(|| hint_for_status(&operation, status, code.as_deref()))
            .map(str::to_owned);
        Self {
            details: Box::new(Details {
                kind: kind_of_status(status),
                operation,
                sandbox: None,
                status: Some(status),
                code,
                message: one_line(&scrub(&message, secrets), 400),
                request_id: request_id.map(|r| one_line(&scrub(&r, secrets), 120)),
                hint,
                attempts: 0,
            }),
            source: None,
        }
    }

    fn render(&self) -> String {
        let mut out = self.details.operation.clone();
        if let Some(sandbox) = &self.details.sandbox {
            out.push_str(&format!(" in sandbox `{sandbox}`"));
        }
        out.push_str(": ");
        if let Some(status) = self.details.status {
            out.push_str(&format!("HTTP {status} "));
        }
        if let Some(code) = &self.details.code {
            out.push_str(code);
            out.push(' ');
        }
        out.push_str(&self.details.message);
        if let Some(id) = &self.details.request_id {
            out.push_str(&format!(" (request id {id})"));
        }
        out
    }
}

/// The error kind an HTTP status means.
pub(crate) fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 | 410 => ErrorKind::NotFound,
        412 => ErrorKind::PreconditionFailed,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

/// Code, message and request id from a Flow Service, gateway or IMS error body.
#[derive(Default)]
struct ParsedBody {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

impl ParsedBody {
    fn parse(body: &[u8]) -> Self {
        if let Ok(flow) = serde_json::from_slice::<FlowErrorBody>(body)
            && (flow.kind.is_some()
                || flow.title.is_some()
                || flow.error_message.is_some()
                || flow.detail.is_some())
        {
            let report = flow.report.clone().unwrap_or_default();
            let rfc7807 = flow.detail.clone().filter(|d| !d.trim().is_empty());
            let detail = flow
                .error_message
                .clone()
                .or(report.detailed_message)
                .filter(|d| !d.trim().is_empty());
            let message = match (flow.title.clone(), detail) {
                // RFC 7807's `detail` is the message when there is one.
                _ if rfc7807.is_some() => rfc7807,
                (Some(title), Some(detail)) if !detail.contains(title.as_str()) => {
                    Some(format!("{title}: {detail}"))
                }
                (Some(_), Some(detail)) | (None, Some(detail)) => Some(detail),
                (title, None) => title,
            };
            return Self {
                code: flow.code().map(str::to_owned),
                message,
                request_id: report.request_id,
            };
        }
        if let Ok(gateway) = serde_json::from_slice::<GatewayErrorBody>(body) {
            return Self {
                code: Some(gateway.error_code),
                message: Some(gateway.message).filter(|m| !m.is_empty()),
                request_id: None,
            };
        }
        if let Ok(ims) = serde_json::from_slice::<ImsErrorBody>(body) {
            return Self {
                code: Some(ims.error),
                message: ims.error_description,
                request_id: None,
            };
        }
        // Not JSON we know: show the start of a text body, which proxies and
        // load balancers send as HTML or plain text.
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        Self {
            message: (!text.is_empty() && !text.starts_with('<')).then(|| text.to_owned()),
            ..Self::default()
        }
    }
}

/// What to do about a code Adobe documents, for the codes where the message
/// alone leaves a person guessing. Flow Service codes are matched on their
/// number (`FLOW-1418-400`, `1418-400` and `1418` alike).
pub(crate) fn hint_for_code(code: &str) -> Option<&'static str> {
    let number = code
        .trim()
        .trim_start_matches("FLOW-")
        .split('-')
        .next()
        .unwrap_or_default();
    let hint = match number {
        "1416" => {
            "the connection is in a state that allows no update or delete (only enabled, disabled or initializing do): check its state in the AEP UI and run again once it settled"
        }
        "1418" => {
            "the connection is used by one or more dataflows: delete those dataflows first (Sources > Dataflows in the AEP UI), then run again"
        }
        "1445" => {
            "PATCH of connections is not enabled for this organization: ask Adobe support to enable it"
        }
        "1456" | "1457" | "1458" => {
            "the connection is being deleted (state delete-finalizing): wait until it is gone, then run again"
        }
        "invalid_scope" => {
            "the credential may not ask for one of these scopes: compare `auth.scopes` with the scopes on the credential's page in the Adobe Developer Console"
        }
        "403025" => {
            "the token is not entitled to Platform APIs for this organization: check the credential's product profile in the Developer Console, the org id (`platform.org_id`), and that the scopes include `additional_info.projectedProductContext`"
        }
        _ => return None,
    };
    Some(hint)
}

/// What to do about an answer whose code says nothing more than its status.
fn hint_for_status(operation: &str, status: u16, code: Option<&str>) -> Option<&'static str> {
    let sandbox_not_found = code.is_some_and(|c| c.trim_start_matches("FLOW-").starts_with("2100"));
    match status {
        // A listing is never "not found" on the right endpoint, but for a
        // sandbox that does not exist (which says so with its own code).
        404 if operation.starts_with("list connections") && !sandbox_not_found => Some(
            "no Flow Service answered at this address: check `platform.endpoint` (it ends in `/data/foundation/flowservice`)",
        ),
        // The gateway's own refusal of a token (IMS's refusals have codes
        // like `invalid_client`, with their own hints).
        401 if code.is_none_or(|c| c == "401013") => Some(
            "the token was refused: an `auth.access_token` may have expired (IMS tokens last 24 hours; `client_secret` gets new ones); with `client_secret`, check that `auth.token_url` and `platform.org_id` are of the same Adobe organization and environment",
        ),
        _ => None,
    }
}

/// One line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat.to_owned()
    }
}

/// A short, secret-free description of a JSON decode error: serde's own
/// message can quote the offending value, which might be a token.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let class = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!(
        "the answer is {class} (line {}, column {})",
        e.line(),
        e.column()
    )
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Server => "server error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::Config => "configuration",
            ErrorKind::Decode => "unreadable answer",
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn answer(status: u16, body: &str, request_id: Option<&str>) -> Error {
        let mut headers = HeaderMap::new();
        if let Some(id) = request_id {
            headers.insert("x-request-id", HeaderValue::from_str(id).unwrap());
        }
        Error::from_answer(
            "create `sales-eu`",
            status,
            &headers,
            body.as_bytes(),
            &["s3cr3t-value"],
        )
        .with_sandbox("prod")
    }

    #[test]
    fn flow_shape_gives_code_message_and_request_id() {
        let e = answer(
            412,
            r#"{"type":"https://ns.adobe.com/aep/errors/FLOW-1404-412","title":"Version not matching","status":412,"report":{"request-id":"abc-123"}}"#,
            Some("header-id"),
        );
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
        assert_eq!(e.code(), Some("FLOW-1404-412"));
        assert_eq!(e.request_id(), Some("abc-123"));
        assert_eq!(
            e.to_string(),
            "create `sales-eu` in sandbox `prod`: HTTP 412 FLOW-1404-412 Version not matching (request id abc-123)"
        );
    }

    #[test]
    fn gateway_shape_gives_code_and_message() {
        let e = answer(
            401,
            r#"{"error_code":"401013","message":"Oauth token is not valid"}"#,
            Some("r-9"),
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.code(), Some("401013"));
        assert_eq!(e.message(), "Oauth token is not valid");
        assert_eq!(e.request_id(), Some("r-9"));
        assert_eq!(e.sandbox(), Some("prod"));
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (400, ErrorKind::BadRequest),
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Forbidden),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::BadRequest),
            (412, ErrorKind::PreconditionFailed),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (503, ErrorKind::Server),
        ];
        for (status, kind) in cases {
            assert_eq!(kind_of_status(status), kind, "{status}");
        }
    }

    #[test]
    fn unknown_bodies_fall_back_to_text_or_reason() {
        assert_eq!(
            answer(502, "upstream broke\n", None).message(),
            "upstream broke"
        );
        assert_eq!(answer(502, "<html>x</html>", None).message(), "Bad Gateway");
        assert_eq!(answer(504, "", None).message(), "Gateway Timeout");
    }

    #[test]
    fn echoed_secrets_are_blanked() {
        let e = answer(
            400,
            r#"{"type":"x/FLOW-1-400","title":"Bad","errorMessage":"bad params DefaultEndpointsProtocol=https;AccountName=a;AccountKey=QUJDRA==;x s3cr3t-value"}"#,
            None,
        );
        let text = format!("{e} {e:?}");
        assert!(!text.contains("QUJDRA=="), "{text}");
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("AccountKey=***"), "{text}");
    }

    #[test]
    fn messages_are_one_line() {
        let e = answer(
            400,
            r#"{"error_code":"400003","message":"line one\nline two"}"#,
            None,
        );
        assert!(!e.to_string().contains('\n'));
    }
}
