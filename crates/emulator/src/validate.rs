//! Checks of what clients send: a new connection's body, `auth.specName` and `auth.params`
//! of an ATS connection, and the `/test` rule over a stored connection string.

use atsprov_model::connstr::{self, Segment};
use atsprov_model::wire::{
    ATS_AUTH_SPEC_NAME, ATS_CONNECTION_SPEC_ID, ATS_CONNECTION_SPEC_VERSION,
};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::FlowError;
use crate::store::{Conn, Fields, clip};

/// The segments of a connection string, keys as written; `None` when a segment has no `=`.
fn segments(text: &str) -> Option<Vec<(&str, &str)>> {
    connstr::segments(text)
        .filter_map(|segment| match segment {
            Segment::Blank => None,
            Segment::Bare => Some(None),
            Segment::Pair { key, value } => Some(Some((key, value))),
        })
        .collect()
}

fn segment<'a>(segments: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    segments
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

/// The `/test` rule (see the crate docs).
pub(crate) fn connection_works(conn: &Conn) -> bool {
    let Some(Value::String(text)) = conn.auth_params.get("connectionString") else {
        return false;
    };
    let Some(segments) = segments(text) else {
        return false;
    };
    let protocol_ok = segment(&segments, "DefaultEndpointsProtocol")
        .is_none_or(|p| p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http"));
    let name_ok = segment(&segments, "AccountName").is_some_and(|n| !n.is_empty());
    let key_ok = segment(&segments, "AccountKey").is_some_and(|k| {
        base64::engine::general_purpose::STANDARD
            .decode(k)
            .is_ok_and(|bytes| !bytes.is_empty())
    });
    protocol_ok && name_ok && key_ok
}

/// Checks `auth.params` of an ATS connection: an object whose `connectionString` has
/// an `AccountName` and an `AccountKey`.
pub(crate) fn check_auth_params(params: &Value) -> Result<Map<String, Value>, FlowError> {
    let Value::Object(map) = params else {
        return Err(FlowError::bad_request(
            "1402-400",
            "`auth.params` must be an object",
        ));
    };
    let Some(value) = map.get("connectionString") else {
        return Err(FlowError::bad_request(
            "1406-400",
            "`auth.params.connectionString` is required",
        ));
    };
    let Value::String(text) = value else {
        return Err(FlowError::bad_request(
            "1408-400",
            "`auth.params.connectionString` must be a string",
        ));
    };
    let malformed = |what: &str| {
        FlowError::bad_request(
            "1408-400",
            format!(
                "`auth.params.connectionString` is not a valid Azure Table Storage connection string: {what}"
            ),
        )
    };
    let segments = segments(text)
        .ok_or_else(|| malformed("expected `Key=Value` segments separated by `;`"))?;
    if segment(&segments, "AccountName").is_none_or(str::is_empty) {
        return Err(malformed("`AccountName` is missing"));
    }
    if segment(&segments, "AccountKey").is_none_or(str::is_empty) {
        return Err(malformed("`AccountKey` is missing"));
    }
    Ok(map.clone())
}

/// Checks `auth.specName`.
pub(crate) fn check_spec_name(name: Option<&Value>) -> Result<String, FlowError> {
    match name {
        None | Some(Value::Null) => Err(FlowError::bad_request(
            "1406-400",
            "`auth.specName` is required",
        )),
        Some(Value::String(s)) if s == ATS_AUTH_SPEC_NAME => Ok(s.clone()),
        Some(Value::String(s)) => Err(FlowError::bad_request(
            "1415-400",
            format!(
                "`auth.specName` `{}` is not supported by this connection spec; expected `{ATS_AUTH_SPEC_NAME}`",
                clip(s)
            ),
        )),
        Some(_) => Err(FlowError::bad_request(
            "1402-400",
            "`auth.specName` must be a string",
        )),
    }
}

fn required_string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, FlowError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(FlowError::bad_request(
            "1406-400",
            format!("`{path}` is required"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(FlowError::bad_request(
            "1406-400",
            format!("`{path}` must not be empty"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(FlowError::bad_request(
            "1402-400",
            format!("`{path}` must be a string"),
        )),
    }
}

fn required_object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, FlowError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(FlowError::bad_request(
            "1406-400",
            format!("`{path}` is required"),
        )),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(FlowError::bad_request(
            "1402-400",
            format!("`{path}` must be an object"),
        )),
    }
}

/// Checks the body of `POST /connections`.
pub(crate) fn check_new(body: &Value) -> Result<Fields, FlowError> {
    let Value::Object(object) = body else {
        return Err(FlowError::bad_request(
            "1402-400",
            "the request body must be a JSON object",
        ));
    };
    let name = required_string(object, "name", "name")?.to_owned();
    let description = match object.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(FlowError::bad_request(
                "1402-400",
                "`description` must be a string",
            ));
        }
    };
    let spec = required_object(object, "connectionSpec", "connectionSpec")?;
    let spec_id = required_string(spec, "id", "connectionSpec.id")?;
    if spec_id != ATS_CONNECTION_SPEC_ID {
        return Err(FlowError::bad_request(
            "1413-400",
            format!("connection spec `{}` does not exist", clip(spec_id)),
        ));
    }
    let spec_version = match spec.get("version") {
        None | Some(Value::Null) => ATS_CONNECTION_SPEC_VERSION.to_owned(),
        Some(Value::String(v)) if v == ATS_CONNECTION_SPEC_VERSION => v.clone(),
        Some(Value::String(v)) => {
            return Err(FlowError::bad_request(
                "1413-400",
                format!("connection spec `{spec_id}` has no version `{}`", clip(v)),
            ));
        }
        Some(_) => {
            return Err(FlowError::bad_request(
                "1402-400",
                "`connectionSpec.version` must be a string",
            ));
        }
    };
    let auth = required_object(object, "auth", "auth")?;
    let auth_spec_name = check_spec_name(auth.get("specName"))?;
    let auth_params = match auth.get("params") {
        None | Some(Value::Null) => {
            return Err(FlowError::bad_request(
                "1406-400",
                "`auth.params` is required",
            ));
        }
        Some(params) => check_auth_params(params)?,
    };
    Ok(Fields {
        name,
        description,
        spec_version,
        auth_spec_name,
        auth_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_params_need_name_and_key() {
        for (text, ok) in [
            ("AccountName=a;AccountKey=a2V5", true),
            ("DefaultEndpointsProtocol=https;AccountName=a", false),
            ("AccountKey=a2V5", false),
            ("AccountName=a;AccountKey=", false),
            ("nonsense", false),
        ] {
            let params = serde_json::json!({ "connectionString": text });
            assert_eq!(check_auth_params(&params).is_ok(), ok, "{text}");
        }
    }
}
