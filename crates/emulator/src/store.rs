//! Stored connections per organization and sandbox, their validation, masking and the `/test` rule.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use atsprov_model::connstr::{self, Segment};
use atsprov_model::wire::{
    ATS_AUTH_SPEC_NAME, ATS_CONNECTION_SPEC_ID, ATS_CONNECTION_SPEC_VERSION,
};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::reply::FlowError;

/// Every organization's sandboxes.
#[derive(Default)]
pub(crate) struct Store {
    sandboxes: HashMap<(String, String), Sandbox>,
    /// Insertion sequence, shared by all sandboxes; never reused.
    next_seq: u64,
    /// Bumped on every write; part of each etag, so etags never repeat.
    next_version: u64,
    total: usize,
}

/// One sandbox of one organization.
pub(crate) struct Sandbox {
    pub(crate) id: Arc<str>,
    /// By insertion sequence: the default listing order.
    pub(crate) items: BTreeMap<u64, Arc<Conn>>,
    by_id: HashMap<String, u64>,
}

/// A stored connection, with its real credentials.
pub(crate) struct Conn {
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) spec_version: String,
    pub(crate) auth_spec_name: String,
    pub(crate) auth_params: Map<String, Value>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) created_by: Arc<str>,
    pub(crate) updated_by: Arc<str>,
    pub(crate) created_client: Arc<str>,
    pub(crate) updated_client: Arc<str>,
    pub(crate) etag: String,
}

/// Who writes: the API key of the call and the token's user.
pub(crate) struct Actor {
    pub(crate) client: Arc<str>,
    pub(crate) user: Arc<str>,
}

/// The fields a create or patch sets.
pub(crate) struct Fields {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) spec_version: String,
    pub(crate) auth_spec_name: String,
    pub(crate) auth_params: Map<String, Value>,
}

impl Store {
    /// The sandbox, if anything was ever written to it.
    pub(crate) fn sandbox(&self, org: &str, sandbox: &str) -> Option<&Sandbox> {
        self.sandboxes.get(&(org.to_owned(), sandbox.to_owned()))
    }

    /// Connections stored, over all sandboxes.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    fn version(&mut self) -> String {
        self.next_version += 1;
        format!(
            "\"{:08x}-0000-0200-0000-{:012x}\"",
            self.next_version,
            now_ms()
        )
    }

    /// Stores a new connection; returns its id and etag.
    pub(crate) fn create(
        &mut self,
        org: &str,
        sandbox: &str,
        fields: Fields,
        actor: &Actor,
    ) -> (String, String) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let etag = self.version();
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let conn = Conn {
            seq,
            id: id.clone(),
            name: fields.name,
            description: fields.description,
            spec_version: fields.spec_version,
            auth_spec_name: fields.auth_spec_name,
            auth_params: fields.auth_params,
            created_at: now,
            updated_at: now,
            created_by: actor.user.clone(),
            updated_by: actor.user.clone(),
            created_client: actor.client.clone(),
            updated_client: actor.client.clone(),
            etag: etag.clone(),
        };
        let key = (org.to_owned(), sandbox.to_owned());
        let entry = self.sandboxes.entry(key).or_insert_with(|| Sandbox {
            id: Arc::from(uuid::Uuid::new_v4().to_string()),
            items: BTreeMap::new(),
            by_id: HashMap::new(),
        });
        entry.by_id.insert(id.clone(), seq);
        entry.items.insert(seq, Arc::new(conn));
        self.total += 1;
        (id, etag)
    }

    /// Replaces a connection's fields when `if_match` is its etag; returns the new etag.
    pub(crate) fn update(
        &mut self,
        org: &str,
        sandbox: &str,
        id: &str,
        if_match: &str,
        apply: impl FnOnce(&Conn) -> Result<Fields, FlowError>,
        actor: &Actor,
    ) -> Result<String, FlowError> {
        let etag = self.version();
        let sandbox = self
            .sandboxes
            .get_mut(&(org.to_owned(), sandbox.to_owned()))
            .ok_or_else(|| not_found(id))?;
        let seq = *sandbox.by_id.get(id).ok_or_else(|| not_found(id))?;
        let current = sandbox.items.get_mut(&seq).ok_or_else(|| not_found(id))?;
        if current.etag != if_match {
            return Err(FlowError::new(
                StatusCode::PRECONDITION_FAILED,
                "1404-412",
                "Version not matching: the connection changed since it was read; read it again and retry",
            ));
        }
        let fields = apply(current)?;
        let next = Conn {
            seq,
            id: current.id.clone(),
            name: fields.name,
            description: fields.description,
            spec_version: fields.spec_version,
            auth_spec_name: fields.auth_spec_name,
            auth_params: fields.auth_params,
            created_at: current.created_at,
            updated_at: now_ms().max(current.updated_at),
            created_by: current.created_by.clone(),
            updated_by: actor.user.clone(),
            created_client: current.created_client.clone(),
            updated_client: actor.client.clone(),
            etag: etag.clone(),
        };
        *current = Arc::new(next);
        Ok(etag)
    }

    /// Deletes a connection.
    pub(crate) fn delete(&mut self, org: &str, sandbox: &str, id: &str) -> Result<(), FlowError> {
        let sandbox = self
            .sandboxes
            .get_mut(&(org.to_owned(), sandbox.to_owned()))
            .ok_or_else(|| not_found(id))?;
        let seq = sandbox.by_id.remove(id).ok_or_else(|| not_found(id))?;
        sandbox.items.remove(&seq);
        self.total -= 1;
        Ok(())
    }
}

impl Sandbox {
    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Conn>> {
        self.by_id.get(id).and_then(|seq| self.items.get(seq))
    }
}

/// The 404 for an unknown connection id.
pub(crate) fn not_found(id: &str) -> FlowError {
    FlowError::new(
        StatusCode::NOT_FOUND,
        "1439-404",
        format!("Connection with id `{}` was not found", clip(id)),
    )
}

/// At most 64 characters of client input, for messages.
pub(crate) fn clip(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A connection as every read shows it (`ConnectionItemDTO`), credentials masked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnView<'a> {
    id: &'a str,
    created_at: i64,
    updated_at: i64,
    created_by: &'a str,
    updated_by: &'a str,
    created_client: &'a str,
    updated_client: &'a str,
    sandbox_id: &'a str,
    sandbox_name: &'a str,
    ims_org_id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    connection_spec: SpecView<'a>,
    state: &'static str,
    auth: AuthView<'a>,
    version: &'a str,
    etag: &'a str,
}

#[derive(Serialize)]
struct SpecView<'a> {
    id: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthView<'a> {
    spec_name: &'a str,
    params: Map<String, Value>,
}

impl<'a> ConnView<'a> {
    pub(crate) fn new(conn: &'a Conn, org: &'a str, sandbox: &'a str, sandbox_id: &'a str) -> Self {
        Self {
            id: &conn.id,
            created_at: conn.created_at,
            updated_at: conn.updated_at,
            created_by: &conn.created_by,
            updated_by: &conn.updated_by,
            created_client: &conn.created_client,
            updated_client: &conn.updated_client,
            sandbox_id,
            sandbox_name: sandbox,
            ims_org_id: org,
            name: &conn.name,
            description: conn.description.as_deref(),
            connection_spec: SpecView {
                id: ATS_CONNECTION_SPEC_ID,
                version: &conn.spec_version,
            },
            state: "enabled",
            auth: AuthView {
                spec_name: &conn.auth_spec_name,
                params: mask_params(&conn.auth_params),
            },
            version: &conn.etag,
            etag: &conn.etag,
        }
    }
}

/// Connection string segments whose values are not secret.
const PLAIN_SEGMENTS: [&str; 4] = [
    "DefaultEndpointsProtocol",
    "AccountName",
    "EndpointSuffix",
    "TableEndpoint",
];

/// The mask that replaces every secret value on reads.
pub(crate) const MASK: &str = "***";

/// `auth.params` as reads show them: the plain segments of `connectionString`
/// survive; every other parameter, whatever its type or depth (strings,
/// numbers, objects, arrays), becomes `***` entirely, nested keys included.
fn mask_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .map(|(key, value)| {
            let masked = match value {
                Value::String(text) if key == "connectionString" => {
                    Value::String(mask_connection_string(text))
                }
                _ => Value::String(MASK.to_owned()),
            };
            (key.clone(), masked)
        })
        .collect()
}

fn mask_connection_string(text: &str) -> String {
    let mut out = Vec::new();
    for segment in connstr::segments(text) {
        let (key, value) = match segment {
            Segment::Blank => continue,
            Segment::Bare => return MASK.to_owned(),
            Segment::Pair { key, value } => (key, value),
        };
        if PLAIN_SEGMENTS
            .iter()
            .any(|plain| plain.eq_ignore_ascii_case(key))
        {
            out.push(format!("{key}={value}"));
        } else {
            out.push(format!("{key}={MASK}"));
        }
    }
    out.join(";")
}

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
            "1400-400",
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
            "1408-400",
            format!(
                "`auth.specName` `{}` is not supported by this connection spec; expected `{ATS_AUTH_SPEC_NAME}`",
                clip(s)
            ),
        )),
        Some(_) => Err(FlowError::bad_request(
            "1400-400",
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
            "1400-400",
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
            "1400-400",
            format!("`{path}` must be an object"),
        )),
    }
}

/// Checks the body of `POST /connections`.
pub(crate) fn check_new(body: &Value) -> Result<Fields, FlowError> {
    let Value::Object(object) = body else {
        return Err(FlowError::bad_request(
            "1400-400",
            "the request body must be a JSON object",
        ));
    };
    let name = required_string(object, "name", "name")?.to_owned();
    let description = match object.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(FlowError::bad_request(
                "1400-400",
                "`description` must be a string",
            ));
        }
    };
    let spec = required_object(object, "connectionSpec", "connectionSpec")?;
    let spec_id = required_string(spec, "id", "connectionSpec.id")?;
    if spec_id != ATS_CONNECTION_SPEC_ID {
        return Err(FlowError::bad_request(
            "1407-400",
            format!("connection spec `{}` does not exist", clip(spec_id)),
        ));
    }
    let spec_version = match spec.get("version") {
        None | Some(Value::Null) => ATS_CONNECTION_SPEC_VERSION.to_owned(),
        Some(Value::String(v)) if v == ATS_CONNECTION_SPEC_VERSION => v.clone(),
        Some(Value::String(v)) => {
            return Err(FlowError::bad_request(
                "1407-400",
                format!("connection spec `{spec_id}` has no version `{}`", clip(v)),
            ));
        }
        Some(_) => {
            return Err(FlowError::bad_request(
                "1400-400",
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
    fn masking_keeps_plain_segments_only() {
        let masked = mask_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
        );
        assert_eq!(
            masked,
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net"
        );
        assert_eq!(mask_connection_string("garbage-secret"), "***");
        assert_eq!(
            mask_connection_string("accountkey=abc;SharedAccessSignature=sig"),
            "accountkey=***;SharedAccessSignature=***"
        );
    }

    #[test]
    fn every_other_param_is_masked_whole_at_any_depth() {
        let params = serde_json::json!({
            "connectionString": "AccountName=acct;AccountKey=c2VjcmV0",
            "x": {"secret": "nested-1", "deeper": {"k": ["nested-2", 42]}},
            "list": ["nested-3"],
            "n": 12345,
            "b": true,
            "nothing": null,
            "ConnectionString": "AccountName=acct;AccountKey=other",
        });
        let Value::Object(map) = params else {
            unreachable!()
        };
        let masked = Value::Object(mask_params(&map));
        assert_eq!(
            masked,
            serde_json::json!({
                "connectionString": "AccountName=acct;AccountKey=***",
                "x": "***", "list": "***", "n": "***", "b": "***", "nothing": "***",
                "ConnectionString": "***",
            })
        );
    }

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
