//! JSON Patch for `PATCH /connections/{id}`: `add`, `replace` and `remove` (any case) on
//! `/name`, `/description` and `/auth/params`.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::reply::FlowError;
use crate::store::{self, Conn, Fields};

/// One checked operation.
pub(crate) enum Op {
    Name(String),
    Description(Option<String>),
    AuthParams(Map<String, Value>),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Set,
    Remove,
}

fn bad_path(path: &str) -> FlowError {
    FlowError::bad_request(
        "1455-400",
        format!(
            "patch path `{}` is not supported; use `/name`, `/description` or `/auth/params`",
            store::clip(path)
        ),
    )
}

/// Parses and checks a patch body, before the connection is looked up.
pub(crate) fn parse(body: &Value) -> Result<Vec<Op>, FlowError> {
    let Value::Array(ops) = body else {
        return Err(FlowError::bad_request(
            "1400-400",
            "the request body must be a JSON Patch array",
        ));
    };
    if ops.is_empty() {
        return Err(FlowError::bad_request(
            "1400-400",
            "the JSON Patch array is empty",
        ));
    }
    ops.iter().map(parse_one).collect()
}

fn parse_one(op: &Value) -> Result<Op, FlowError> {
    let Value::Object(op) = op else {
        return Err(FlowError::bad_request(
            "1400-400",
            "each patch operation must be an object",
        ));
    };
    let Some(Value::String(name)) = op.get("op") else {
        return Err(FlowError::bad_request(
            "1400-400",
            "each patch operation needs an `op` string",
        ));
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "add" | "replace" => Kind::Set,
        "remove" => Kind::Remove,
        _ => {
            return Err(FlowError::bad_request(
                "1400-400",
                format!(
                    "patch op `{}` is not supported; use `add`, `replace` or `remove`",
                    store::clip(name)
                ),
            ));
        }
    };
    let Some(Value::String(path)) = op.get("path") else {
        return Err(FlowError::bad_request(
            "1400-400",
            "each patch operation needs a `path` string",
        ));
    };
    let trimmed = path.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    if lower == "/connectionspec" || lower.starts_with("/connectionspec/") {
        return Err(FlowError::bad_request(
            "1414-400",
            "`connectionSpec` of a connection cannot be changed",
        ));
    }
    let value = op.get("value");
    match (trimmed, kind) {
        ("/name", Kind::Set) => match value {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Op::Name(s.clone())),
            _ => Err(FlowError::bad_request(
                "1400-400",
                "`/name` must be set to a non-empty string",
            )),
        },
        ("/name", Kind::Remove) => Err(FlowError::bad_request(
            "1455-400",
            "`/name` is required and cannot be removed",
        )),
        ("/description", Kind::Set) => match value {
            Some(Value::String(s)) => Ok(Op::Description(Some(s.clone()))),
            Some(Value::Null) => Ok(Op::Description(None)),
            _ => Err(FlowError::bad_request(
                "1400-400",
                "`/description` must be set to a string",
            )),
        },
        ("/description", Kind::Remove) => Ok(Op::Description(None)),
        ("/auth/params", Kind::Set) => match value {
            Some(params) => store::check_auth_params(params).map(Op::AuthParams),
            None => Err(FlowError::bad_request(
                "1406-400",
                "`/auth/params` needs a `value`",
            )),
        },
        ("/auth/params", Kind::Remove) => Err(FlowError::bad_request(
            "1455-400",
            "`/auth/params` is required and cannot be removed",
        )),
        _ => Err(bad_path(path)),
    }
}

/// The connection's fields with `ops` applied, in order.
pub(crate) fn apply(conn: &Conn, ops: Vec<Op>) -> Result<Fields, FlowError> {
    let mut fields = Fields {
        name: conn.name.clone(),
        description: conn.description.clone(),
        spec_version: conn.spec_version.clone(),
        auth_spec_name: conn.auth_spec_name.clone(),
        auth_params: conn.auth_params.clone(),
    };
    for op in ops {
        match op {
            Op::Name(name) => fields.name = name,
            Op::Description(description) => fields.description = description,
            Op::AuthParams(params) => fields.auth_params = params,
        }
    }
    Ok(fields)
}

/// The 400 for a PATCH without `If-Match`.
pub(crate) fn if_match_missing() -> FlowError {
    FlowError::new(
        StatusCode::BAD_REQUEST,
        "1403-400",
        "the `If-Match` header with the connection's etag is required",
    )
}
