//! JSON Schemas of the manifest as users write it, of the JSON plan and of the JSON report.
//!
//! The manifest loader walks a figment value key by key (to report every
//! problem with its position) rather than deserializing into serde types, so
//! the manifest's shape is described here by schema-only types that mirror
//! the keys the loader accepts; a unit test keeps the two in step. The plan
//! and report schemas are derived from the types that serialize them.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde_json::Value;

use crate::manifest::{
    DEFAULT_CONCURRENCY, DEFAULT_DESCRIPTION, DEFAULT_MAX_DELETES, MAX_CONCURRENCY, MAX_MAX_DELETES,
};

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The TOML manifest (as JSON Schema, which taplo and Even Better TOML read).
    Manifest,
    /// `plan --format json` (`atsprov.plan/v1`).
    Plan,
    /// `apply --report FILE.json` (`atsprov.report/v1`).
    Report,
}

impl Kind {
    /// Every schema, in the order they are documented.
    pub const ALL: [Kind; 3] = [Kind::Manifest, Kind::Plan, Kind::Report];

    /// The name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Plan => "plan",
            Kind::Report => "report",
        }
    }

    /// The schema.
    pub fn schema(self) -> Schema {
        match self {
            Kind::Manifest => {
                // TOML has no null: an optional key is absent, never `null`.
                SchemaSettings::draft2020_12()
                    .with_transform(RecursiveTransform(no_null))
                    .into_generator()
                    .into_root_schema_for::<ManifestFile>()
            }
            Kind::Plan => schemars::schema_for!(crate::render::PlanJson<'static>),
            Kind::Report => schemars::schema_for!(crate::report::Report),
        }
    }

    /// The schema as pretty JSON with a newline at the end: what `atsprov
    /// schema` prints and what `docs/schemas/` holds.
    pub fn to_json(self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.schema()).expect("a schema serializes to JSON");
        text.push('\n');
        text
    }
}

/// Removes `null` from a schema's types: TOML has no null, an optional key is absent.
fn no_null(schema: &mut Schema) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".to_owned(), only);
        }
    }
    if let Some(Value::Array(any_of)) = schema.get_mut("anyOf") {
        any_of.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if let [only] = any_of.as_slice() {
            let only = only.clone();
            schema.remove("anyOf");
            if let Value::Object(fields) = only {
                for (key, value) in fields {
                    schema.insert(key, value);
                }
            }
        }
    }
}

/// An atsprov manifest: the Flow Service connections for Azure Table Storage
/// accounts that should exist. Any `[platform]`, `[auth]` or `[defaults]` key
/// can also come from an `ATSPROV_<SECTION>__<KEY>` environment variable.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "atsprov manifest")]
pub struct ManifestFile {
    /// The set of connections this manifest manages: written into each
    /// connection's marker, so that several manifests (teams) can share a
    /// sandbox and each one's plan, prune and dedupe touch only its own.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub owner: Option<String>,
    /// Where the API is and who calls it. `org_id` and `api_key` are
    /// required, here or from the environment.
    pub platform: Option<PlatformSection>,
    /// How atsprov gets a bearer token: `client_secret` (OAuth
    /// Server-to-Server) or `access_token`, exactly one of them.
    pub auth: Option<AuthSection>,
    /// Values every account gets unless it sets its own.
    pub defaults: Option<DefaultsSection>,
    /// The storage accounts; each becomes one connection per sandbox.
    #[schemars(length(min = 1))]
    pub accounts: Vec<AccountTable>,
}

/// `[platform]`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PlatformSection {
    /// The Flow Service base URL (https; plain http only for a loopback host).
    #[schemars(extend("default" = crate::wire::DEFAULT_ENDPOINT), extend("format" = "uri"))]
    pub endpoint: Option<String>,
    /// The IMS organization id, ending in `@AdobeOrg`.
    #[schemars(regex(pattern = r"^\S+@AdobeOrg$"))]
    pub org_id: Option<String>,
    /// The Developer Console project's client id: sent as `x-api-key` and
    /// used as the OAuth client id.
    #[schemars(length(min = 1))]
    pub api_key: Option<String>,
}

/// `[auth]`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AuthSection {
    /// The IMS token URL (https; plain http only for a loopback host).
    #[schemars(extend("default" = crate::wire::DEFAULT_TOKEN_URL), extend("format" = "uri"))]
    pub token_url: Option<String>,
    /// The OAuth Server-to-Server client secret.
    pub client_secret: Option<SecretValue>,
    /// The OAuth scopes asked for, sent comma-separated.
    #[schemars(extend("default" = crate::manifest::DEFAULT_SCOPES))]
    #[schemars(length(min = 1), inner(regex(pattern = r"^\S+$")))]
    pub scopes: Option<Vec<String>>,
    /// A ready bearer token, instead of `client_secret` (it expires: not for unattended runs).
    pub access_token: Option<SecretValue>,
}

/// `[defaults]`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DefaultsSection {
    /// The sandboxes of an account that does not name its own.
    #[schemars(extend("default" = crate::manifest::DEFAULT_SANDBOXES))]
    pub sandboxes: Option<Sandboxes>,
    /// The description of an account that does not give its own.
    #[schemars(extend("default" = DEFAULT_DESCRIPTION))]
    pub description: Option<String>,
    /// The most API calls in flight at once (`apply --concurrency` wins).
    #[schemars(range(min = 1, max = MAX_CONCURRENCY), extend("default" = DEFAULT_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// A pruning `apply` that would delete more connections than this
    /// deletes nothing (`--max-deletes` wins).
    #[schemars(
        range(min = 0, max = MAX_MAX_DELETES),
        extend("default" = DEFAULT_MAX_DELETES)
    )]
    pub max_deletes: Option<u32>,
}

/// One `[[accounts]]` table: either `account_name` and `account_key`, or
/// `connection_string`.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [
        {"required": ["account_name", "account_key"], "not": {"required": ["connection_string"]}},
        {"required": ["connection_string"], "not": {"anyOf": [
            {"required": ["account_name"]},
            {"required": ["account_key"]},
            {"required": ["endpoint_suffix"]}
        ]}}
    ])
)]
pub struct AccountTable {
    /// The connection's name in AEP; unique per sandbox within the manifest.
    #[schemars(regex(pattern = r"^\S(.*\S)?$"))]
    pub name: String,
    /// The storage account: 3 to 24 lowercase letters and digits.
    #[schemars(regex(pattern = r"^[a-z0-9]{3,24}$"))]
    pub account_name: Option<String>,
    /// The storage account's key (base64, as Azure shows it).
    pub account_key: Option<SecretValue>,
    /// A whole storage connection string, instead of `account_name` and `account_key`.
    pub connection_string: Option<SecretValue>,
    /// The storage endpoint suffix, for clouds other than Azure's public one
    /// (not with `connection_string`).
    #[schemars(extend("default" = "core.windows.net"))]
    pub endpoint_suffix: Option<String>,
    /// An explicit Table endpoint for `verify` (e.g. an emulator's); not sent to AEP.
    #[schemars(extend("format" = "uri"))]
    pub table_endpoint: Option<String>,
    /// The connection's description (default: `defaults.description`).
    pub description: Option<String>,
    /// The sandboxes this account goes to (default: `defaults.sandboxes`).
    pub sandboxes: Option<Sandboxes>,
    /// Take over an existing connection of the same name that atsprov does not manage.
    #[schemars(extend("default" = false))]
    pub adopt: Option<bool>,
}

/// Sandbox names: lowercase letters, digits and `-`; at least one; each once.
#[derive(JsonSchema)]
#[schemars(transform = unique_items)]
pub struct Sandboxes(
    #[schemars(length(min = 1), inner(regex(pattern = r"^[a-z0-9-]+$")))] pub Vec<String>,
);

fn unique_items(schema: &mut Schema) {
    schema.insert("uniqueItems".to_owned(), true.into());
}

/// A secret: `{ env = "VAR" }`, `{ file = "path" }` (relative to the
/// manifest), or a literal string (accepted with a warning).
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum SecretValue {
    /// Read from an environment variable.
    Env(EnvSecret),
    /// Read from a file, relative to the manifest's directory.
    File(FileSecret),
    /// Written in the manifest itself (discouraged: a warning says so).
    Literal(#[schemars(length(min = 1))] String),
}

/// `{ env = "VAR" }`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EnvSecret {
    /// The environment variable that holds the secret.
    #[schemars(length(min = 1))]
    pub env: String,
}

/// `{ file = "path" }`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FileSecret {
    /// The file that holds the secret, relative to the manifest's directory.
    #[schemars(length(min = 1))]
    pub file: String,
}

#[cfg(test)]
mod tests;
