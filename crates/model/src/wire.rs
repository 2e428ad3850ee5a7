//! The Flow Service and IMS wire types: what goes over HTTP, as the API spells it.
//!
//! Facts: Adobe's Flow Service documentation (see `docs/real-aep.md`). Reads never carry credentials, so
//! [`Connection`] has no `auth` field at all: whatever a server returns there
//! is dropped at parse time and cannot leak through `Debug` or a report.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::secret::{self, Secret};

/// The connection spec id of Azure Table Storage.
pub const ATS_CONNECTION_SPEC_ID: &str = "ecde33f2-c56f-46cc-bdea-ad151c16cd69";
/// The connection spec version atsprov writes.
pub const ATS_CONNECTION_SPEC_VERSION: &str = "1.0";
/// The only auth spec the ATS connector documents.
pub const ATS_AUTH_SPEC_NAME: &str = "Connection String Based Authentication";
/// The default Flow Service base URL.
pub const DEFAULT_ENDPOINT: &str = "https://platform.adobe.io/data/foundation/flowservice";
/// The default IMS token URL (OAuth Server-to-Server).
pub const DEFAULT_TOKEN_URL: &str = "https://ims-na1.adobelogin.com/ims/token/v3";
/// The largest page `GET /connections` serves.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A reference to a connection spec.
///
/// The ATS spec's id and version, read back on every listed connection,
/// are not allocated: they borrow the constants (100,000 connections, two
/// allocations each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    /// The spec id.
    #[serde(deserialize_with = "known_text")]
    pub id: Cow<'static, str>,
    /// The spec version; omitted means the latest.
    #[serde(
        default,
        deserialize_with = "known_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<Cow<'static, str>>,
}

/// The texts every listed ATS connection repeats.
const KNOWN_TEXTS: [&str; 5] = [
    ATS_CONNECTION_SPEC_ID,
    ATS_CONNECTION_SPEC_VERSION,
    "enabled",
    "disabled",
    STATE_DELETE_FINALIZING,
];

fn known(text: String) -> Cow<'static, str> {
    match KNOWN_TEXTS.iter().find(|k| **k == text) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(text),
    }
}

fn known_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    String::deserialize(d).map(known)
}

fn known_text_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'static, str>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(known))
}

/// The body of `POST /connections` for an ATS connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewConnection {
    /// The connection's name.
    pub name: String,
    /// The full description, ownership marker included.
    pub description: String,
    /// The credentials.
    pub auth: NewAuth,
    /// Always the ATS spec.
    pub connection_spec: SpecRef,
}

impl NewConnection {
    /// An ATS connection with the given name, description and connection string.
    pub fn ats(name: &str, description: &str, connection_string: Secret) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            auth: NewAuth {
                spec_name: ATS_AUTH_SPEC_NAME.to_owned(),
                params: AuthParams { connection_string },
            },
            connection_spec: SpecRef {
                id: ATS_CONNECTION_SPEC_ID.into(),
                version: Some(ATS_CONNECTION_SPEC_VERSION.into()),
            },
        }
    }
}

/// `auth` of a connection being written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuth {
    /// `Connection String Based Authentication`.
    pub spec_name: String,
    /// The parameters, which hold the secret.
    pub params: AuthParams,
}

/// `auth.params` of an ATS connection being written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    /// `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`.
    #[serde(serialize_with = "secret::expose_for_wire")]
    pub connection_string: Secret,
}

/// `{"id","etag"}`: the answer to a create or a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The connection id.
    pub id: String,
    /// The new etag, quotes included, to send back exactly as received.
    pub etag: String,
}

/// A connection as read back from the API (`ConnectionItemDTO`), credentials dropped.
///
/// Only what atsprov reads is kept: the other fields of the answer
/// (`updatedAt`, `createdClient`, `updatedClient`, `sandboxName`, …) are
/// skipped at parse time, since a plan may hold 100,000 of these at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The connection id.
    pub id: String,
    /// The connection's name.
    pub name: String,
    /// The description, ownership marker included when atsprov wrote it.
    #[serde(default)]
    pub description: Option<String>,
    /// The connection spec.
    pub connection_spec: SpecRef,
    /// `enabled` or `disabled` (the usual values are not allocated).
    #[serde(default, deserialize_with = "known_text_opt")]
    pub state: Option<Cow<'static, str>>,
    /// The etag, quotes included.
    pub etag: String,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The plain parts of the stored connection string (account name,
    /// endpoint suffix, Table endpoint), for showing what an update changes.
    /// The key is never kept, whatever the server sent.
    #[serde(
        default,
        rename = "auth",
        deserialize_with = "plain_from_auth",
        skip_serializing
    )]
    pub plain: PlainParts,
}

/// The state in which a connection is being deleted: it is already gone for
/// every purpose of a plan (it refuses updates and deletes).
pub const STATE_DELETE_FINALIZING: &str = "delete-finalizing";

impl Connection {
    /// True when the connection is on its way out (`delete-finalizing`).
    pub fn is_deleting(&self) -> bool {
        self.state.as_deref() == Some(STATE_DELETE_FINALIZING)
    }
}

/// The parts of a connection string that are not secret, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainParts {
    /// `AccountName`.
    pub account_name: Option<String>,
    /// `EndpointSuffix`; `None` when the string does not carry one (the default suffix).
    pub endpoint_suffix: Option<String>,
    /// `TableEndpoint`, as it may be shown: a `user:password@` in it reads
    /// `***@` ([`crate::url_policy::shown_text`]).
    pub table_endpoint: Option<String>,
}

impl PlainParts {
    /// Picks the plain parts out of a connection string; everything else
    /// (the key above all) is dropped, and so is any user or password in the
    /// `TableEndpoint`. Values longer than 512 bytes are dropped too: no real
    /// account name, suffix or endpoint is that long.
    pub fn of_connection_string(text: &str) -> Self {
        let mut parts = Self::default();
        for segment in text.split(';') {
            let Some((key, value)) = segment.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() || value.len() > 512 {
                continue;
            }
            match key.trim() {
                "AccountName" => parts.account_name = Some(value.to_owned()),
                "EndpointSuffix" => parts.endpoint_suffix = Some(value.to_owned()),
                "TableEndpoint" => {
                    parts.table_endpoint = Some(crate::url_policy::shown_text(value));
                }
                _ => {}
            }
        }
        parts
    }
}

fn plain_from_auth<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PlainParts, D::Error> {
    // The connection string is held as JSON text only inside this function
    // and reduced to its plain parts at once.
    let auth: Option<serde_json::Value> = Option::deserialize(d)?;
    let text = auth
        .as_ref()
        .and_then(|a| a.get("params"))
        .and_then(|p| p.get("connectionString"))
        .and_then(serde_json::Value::as_str);
    Ok(text
        .map(PlainParts::of_connection_string)
        .unwrap_or_default())
}

/// A listed connection read for its id, name and spec alone (the wait for
/// new connections to show in listings): the rest of each item is skipped,
/// not decoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedId {
    /// The connection id.
    pub id: String,
    /// The connection's name.
    pub name: String,
    /// The connection spec.
    pub connection_spec: SpecRef,
}

/// The answer to `GET /connections` and `GET /connections/{id}`, its items
/// read as `T` ([`Connection`], or [`ListedId`] when only ids matter).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionList<T = Connection> {
    /// One page of connections; required (an answer without it is not a list).
    pub items: Vec<T>,
    /// Paging links, when more pages follow.
    #[serde(default, rename = "_links")]
    pub links: Option<Links>,
}

/// The answer to `GET /connections?count=true`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CountAnswer {
    /// How many connections match the filters.
    pub count: u64,
}

/// `_links` of a list answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Links {
    /// The next page, a path relative to the base URL.
    #[serde(default)]
    pub next: Option<Link>,
}

/// One link.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    /// The target, a path relative to the base URL such as `/connections?continuationToken=…`.
    pub href: String,
}

/// The answer to `GET /connections/{id}/test`.
#[derive(Debug, Clone, Deserialize)]
pub struct TestResult {
    /// Whether the stored credentials work.
    pub result: bool,
}

/// One operation of a JSON Patch sent to `PATCH /connections/{id}`.
#[derive(Debug, Clone)]
pub enum PatchOp {
    /// `add /description`: RFC 6902's `add` creates or overwrites, where
    /// `replace` of a connection without a description is refused (`1455-400`).
    Description(String),
    /// `replace /auth/params` with a new connection string.
    Credentials(Secret),
}

impl Serialize for PatchOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(3))?;
        match self {
            PatchOp::Description(text) => {
                map.serialize_entry("op", "add")?;
                map.serialize_entry("path", "/description")?;
                map.serialize_entry("value", text)?;
            }
            PatchOp::Credentials(connection_string) => {
                map.serialize_entry("op", "replace")?;
                map.serialize_entry("path", "/auth/params")?;
                map.serialize_entry(
                    "value",
                    &AuthParams {
                        connection_string: connection_string.clone(),
                    },
                )?;
            }
        }
        map.end()
    }
}

/// A Flow Service error body (RFC 7807 style).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowErrorBody {
    /// `https://ns.adobe.com/aep/errors/FLOW-1439-404`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// A short title.
    #[serde(default)]
    pub title: Option<String>,
    /// The HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Details.
    #[serde(default)]
    pub report: Option<FlowErrorReport>,
    /// The message.
    #[serde(default)]
    pub error_message: Option<String>,
    /// RFC 7807's human-readable explanation; the only message in some answers.
    #[serde(default)]
    pub detail: Option<String>,
}

impl FlowErrorBody {
    /// The error code, the last path segment of `type` (`FLOW-1439-404`).
    pub fn code(&self) -> Option<&str> {
        let kind = self.kind.as_deref()?;
        kind.rsplit('/').next().filter(|c| !c.is_empty())
    }
}

/// `report` of a Flow Service error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlowErrorReport {
    /// The detailed message.
    #[serde(default, rename = "detailed-message")]
    pub detailed_message: Option<String>,
    /// The request id.
    #[serde(default, rename = "request-id")]
    pub request_id: Option<String>,
}

/// An Adobe I/O gateway error body: `{"error_code":"401013","message":"…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayErrorBody {
    /// The code, e.g. `401013`.
    pub error_code: String,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// The IMS token answer.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: Secret,
    /// `bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime in seconds, as sent: any JSON number, saturated into an
    /// `i64` (fractions dropped), so a hostile value cannot fail the parse or
    /// overflow later. Callers clamp it to a sane range.
    #[serde(deserialize_with = "saturating_seconds")]
    pub expires_in: i64,
}

fn saturating_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    // `as` saturates at the bounds and maps NaN to 0.
    Ok(seconds as i64)
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// An IMS error body: `{"error":"invalid_client","error_description":"…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ImsErrorBody {
    /// The OAuth error code.
    pub error: String,
    /// A description.
    #[serde(default)]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_ops_serialize_as_json_patch() {
        let ops = vec![
            PatchOp::Description("d".into()),
            PatchOp::Credentials(Secret::new("cs")),
        ];
        let json = serde_json::to_value(&ops).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"op": "add", "path": "/description", "value": "d"},
                {"op": "replace", "path": "/auth/params", "value": {"connectionString": "cs"}}
            ])
        );
        assert!(!format!("{ops:?}").contains("cs\""));
    }

    #[test]
    fn flow_error_code_is_the_last_segment_of_type() {
        let body: FlowErrorBody = serde_json::from_str(
            r#"{"type":"https://ns.adobe.com/aep/errors/FLOW-1439-404","title":"Resource not found","status":404,"report":{"detailed-message":"x","request-id":"r1"}}"#,
        )
        .unwrap();
        assert_eq!(body.code(), Some("FLOW-1439-404"));
        assert_eq!(body.report.unwrap().request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn plain_parts_never_keep_a_key_or_an_endpoint_password() {
        let parts = PlainParts::of_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey=S2V5;EndpointSuffix=core.chinacloudapi.cn;TableEndpoint=http://u:SECRETPW@10.1.1.1/saleseu",
        );
        assert_eq!(
            parts,
            PlainParts {
                account_name: Some("saleseu".into()),
                endpoint_suffix: Some("core.chinacloudapi.cn".into()),
                table_endpoint: Some("http://***@10.1.1.1/saleseu".into()),
            }
        );
        let odd = PlainParts::of_connection_string("TableEndpoint=u:SECRETPW@10.1.1.1");
        assert_eq!(odd.table_endpoint.as_deref(), Some("***"));
        let plain = PlainParts::of_connection_string(
            "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1",
        );
        assert_eq!(
            plain.table_endpoint.as_deref(),
            Some("http://127.0.0.1:10002/devstoreaccount1")
        );
    }

    #[test]
    fn reads_drop_credentials() {
        let c: Connection = serde_json::from_str(
            r#"{"id":"1","name":"n","connectionSpec":{"id":"x","version":"1.0"},"etag":"\"e\"","auth":{"specName":"s","params":{"connectionString":"SECRET"}}}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
