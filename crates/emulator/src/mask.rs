//! What reads show of a stored connection: `ConnectionItemDTO` with `auth.params` masked.

use atsprov_model::connstr::{self, Segment};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::Conn;

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
    state: &'a str,
    auth: AuthView<'a>,
    version: &'a str,
    etag: &'a str,
}

#[derive(Serialize)]
struct SpecView<'a> {
    id: &'a str,
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
                id: &conn.spec_id,
                version: &conn.spec_version,
            },
            state: &conn.state,
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
}
