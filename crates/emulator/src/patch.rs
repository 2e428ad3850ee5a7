//! JSON Patch (RFC 6902) for `PATCH /connections/{id}`: `add`, `replace` and `remove` (any
//! case) on `/name`, `/description` and `/auth/params`. `add` creates or overwrites;
//! `replace` and `remove` need the field to exist (`1455-400` otherwise).

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::FlowError;
use crate::store::{self, Conn, Fields};
use crate::validate;

/// One checked operation.
pub(crate) enum Op {
    Name(String),
    /// `add` (`must_exist` false) or `replace` of the description.
    Description {
        value: String,
        must_exist: bool,
    },
    RemoveDescription,
    AuthParams(Map<String, Value>),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Add,
    Replace,
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
            "1402-400",
            "the request body must be a JSON Patch array",
        ));
    };
    if ops.is_empty() {
        return Err(FlowError::bad_request(
            "1402-400",
            "the JSON Patch array is empty",
        ));
    }
    ops.iter().map(parse_one).collect()
}

fn parse_one(op: &Value) -> Result<Op, FlowError> {
    let Value::Object(op) = op else {
        return Err(FlowError::bad_request(
            "1402-400",
            "each patch operation must be an object",
        ));
    };
    let Some(Value::String(name)) = op.get("op") else {
        return Err(FlowError::bad_request(
            "1402-400",
            "each patch operation needs an `op` string",
        ));
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "add" => Kind::Add,
        "replace" => Kind::Replace,
        "remove" => Kind::Remove,
        _ => {
            return Err(FlowError::bad_request(
                "1402-400",
                format!(
                    "patch op `{}` is not supported; use `add`, `replace` or `remove`",
                    store::clip(name)
                ),
            ));
        }
    };
    let Some(Value::String(path)) = op.get("path") else {
        return Err(FlowError::bad_request(
            "1402-400",
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
        ("/name", Kind::Add | Kind::Replace) => match value {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Op::Name(s.clone())),
            _ => Err(FlowError::bad_request(
                "1402-400",
                "`/name` must be set to a non-empty string",
            )),
        },
        ("/name", Kind::Remove) => Err(FlowError::bad_request(
            "1455-400",
            "`/name` is required and cannot be removed",
        )),
        ("/description", Kind::Add | Kind::Replace) => match value {
            Some(Value::String(s)) => Ok(Op::Description {
                value: s.clone(),
                must_exist: kind == Kind::Replace,
            }),
            _ => Err(FlowError::bad_request(
                "1402-400",
                "`/description` must be set to a string",
            )),
        },
        ("/description", Kind::Remove) => Ok(Op::RemoveDescription),
        ("/auth/params", Kind::Add | Kind::Replace) => match value {
            Some(params) => validate::check_auth_params(params).map(Op::AuthParams),
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
    let missing = |op: &str| {
        FlowError::bad_request(
            "1455-400",
            format!(
                "cannot `{op}` `/description`: the connection has no description; use `add` to create it"
            ),
        )
    };
    for op in ops {
        match op {
            Op::Name(name) => fields.name = name,
            Op::Description { value, must_exist } => {
                if must_exist && fields.description.is_none() {
                    return Err(missing("replace"));
                }
                fields.description = Some(value);
            }
            Op::RemoveDescription => {
                if fields.description.take().is_none() {
                    return Err(missing("remove"));
                }
            }
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
