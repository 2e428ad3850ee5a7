//! Answers in the three shapes Adobe uses: Flow Service (RFC 7807 style), gateway and IMS.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// An answer being built: the status and body, plus what the request log needs.
pub(crate) struct Reply {
    pub(crate) response: Response,
    /// Set when an ambiguous fault withheld the answer.
    pub(crate) dropped: bool,
}

impl Reply {
    pub(crate) fn new(response: Response) -> Self {
        Self {
            response,
            dropped: false,
        }
    }
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize an answer");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 204 with no body.
pub(crate) fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A Flow Service error, e.g. `flow(404, "1439-404", "...")`.
#[derive(Debug)]
pub(crate) struct FlowError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl FlowError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let title = match self.status.as_u16() {
            400 => "Bad request",
            404 => "Resource not found",
            405 => "Method not allowed",
            412 => "Precondition failed",
            413 => "Payload too large",
            503 => "Service unavailable",
            _ => self.status.canonical_reason().unwrap_or("Error"),
        };
        let body = serde_json::json!({
            "type": format!("https://ns.adobe.com/aep/errors/FLOW-{}", self.code),
            "title": title,
            "status": self.status.as_u16(),
            "report": {
                "detailed-message": self.message,
                "request-id": request_id,
            },
            "errorMessage": self.message,
        });
        json(self.status, &body)
    }
}

/// A gateway error: `{"error_code","message"}`.
pub(crate) fn gateway(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "error_code": code, "message": message }),
    )
}

/// An IMS error: `{"error","error_description"}`.
pub(crate) fn ims(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// An answer whose body fails before its first byte: hyper then closes the connection
/// without writing the buffered head, so the client sees the connection drop unanswered.
pub(crate) fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("ambiguous fault: answer withheld"))
    });
    Response::new(Body::from_stream(stream))
}
