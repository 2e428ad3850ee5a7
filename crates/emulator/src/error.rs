//! Errors in the three shapes Adobe uses (Flow Service RFC 7807 style, gateway, IMS), as
//! [`ApiError`] that handlers and middleware return, plus the plain answers they build.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being answered, set by the request-id middleware.
    static REQUEST_ID: Arc<str>;
}

/// Runs `future` with `id` as the current request id (read by [`FlowError`] bodies).
pub(crate) async fn scope_request_id<F: Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The current request's id, or empty outside a request.
pub(crate) fn request_id() -> Arc<str> {
    REQUEST_ID
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(""))
}

/// Anything a handler or middleware refuses with.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Flow Service shape.
    Flow(FlowError),
    /// Gateway shape: `{"error_code","message"}`.
    Gateway(GatewayError),
    /// IMS shape: `{"error","error_description"}`.
    Ims(ImsError),
}

impl From<FlowError> for ApiError {
    fn from(err: FlowError) -> Self {
        ApiError::Flow(err)
    }
}

impl From<GatewayError> for ApiError {
    fn from(err: GatewayError) -> Self {
        ApiError::Gateway(err)
    }
}

impl From<ImsError> for ApiError {
    fn from(err: ImsError) -> Self {
        ApiError::Ims(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Flow(err) => err.into_response(),
            ApiError::Gateway(err) => err.into_response(),
            ApiError::Ims(err) => err.into_response(),
        }
    }
}

/// How a Flow Service error body carries its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `title`, `report.detailed-message`, `report.request-id` and `errorMessage`.
    Report,
    /// `title` and `detail` only (e.g. the missing content-type answer).
    Detail(&'static str),
}

/// A Flow Service error, e.g. `FlowError::new(404, "1101-404", "...")`.
#[derive(Debug)]
pub(crate) struct FlowError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    shape: Shape,
    allow: Option<&'static str>,
}

impl FlowError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            shape: Shape::Report,
            allow: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An RFC 7807 body whose only message is `detail`, under `title`.
    pub(crate) fn detail_only(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            shape: Shape::Detail(title),
            ..Self::new(status, code, detail)
        }
    }

    /// `1105-405` with an `Allow` header.
    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "1105-405",
                format!("method not allowed; this path accepts {allow}"),
            )
        }
    }
}

impl IntoResponse for FlowError {
    fn into_response(self) -> Response {
        let kind = format!("https://ns.adobe.com/aep/errors/FLOW-{}", self.code);
        let body = match self.shape {
            Shape::Detail(title) => serde_json::json!({
                "type": kind,
                "title": title,
                "status": self.status.as_u16(),
                "detail": self.message,
            }),
            Shape::Report => {
                let title = match self.status.as_u16() {
                    400 => "Bad request",
                    404 => "Resource not found",
                    405 => "Method not allowed",
                    412 => "Precondition failed",
                    413 => "Payload too large",
                    500 => "Internal server error",
                    503 => "Service unavailable",
                    _ => self.status.canonical_reason().unwrap_or("Error"),
                };
                serde_json::json!({
                    "type": kind,
                    "title": title,
                    "status": self.status.as_u16(),
                    "report": {
                        "detailed-message": self.message,
                        "request-id": &*request_id(),
                    },
                    "errorMessage": self.message,
                })
            }
        };
        let mut response = json(self.status, &body);
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A gateway refusal.
#[derive(Debug)]
pub(crate) struct GatewayError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: &'static str,
    /// `Retry-After` in seconds.
    pub(crate) retry_after: Option<u64>,
    /// Adds `Connection: close`, so the server closes the connection after the answer.
    pub(crate) close: bool,
}

impl GatewayError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            retry_after: None,
            close: false,
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let mut response = json(
            self.status,
            &serde_json::json!({ "error_code": self.code, "message": self.message }),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// An IMS refusal.
#[derive(Debug)]
pub(crate) struct ImsError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    pub(crate) allow: Option<&'static str>,
}

impl ImsError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            allow: None,
        }
    }
}

impl IntoResponse for ImsError {
    fn into_response(self) -> Response {
        let mut response = json(
            self.status,
            &serde_json::json!({ "error": self.error, "error_description": self.description }),
        );
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize an answer");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// A 204 with no body.
pub(crate) fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// An answer whose body fails before its first byte: hyper then closes the connection
/// without writing the buffered head, so the client sees the connection drop unanswered.
pub(crate) fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("ambiguous fault: answer withheld"))
    });
    Response::new(Body::from_stream(stream))
}
