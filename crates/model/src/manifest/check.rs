//! The rules: walks the merged figment value and builds a [`Manifest`] or every diagnostic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::value::{Dict, Num, Value};

use super::source::{self, File, LAYER_DEFAULTS, LAYER_ENV, LAYER_FILE, LAYER_FLAGS, Layer};
use super::{
    Account, Auth, DEFAULT_SANDBOXES, Environment, MAX_CONCURRENCY, Manifest, Overrides, Platform,
};
use crate::connstr::{self, ConnectionString};
use crate::diagnostic::{Diagnostic, Diagnostics, Location, did_you_mean};
use crate::secret::{Secret, SecretRef};

const TOP_KEYS: [&str; 4] = ["platform", "auth", "defaults", "accounts"];
const PLATFORM_KEYS: [&str; 3] = ["endpoint", "org_id", "api_key"];
const AUTH_KEYS: [&str; 4] = ["token_url", "client_secret", "scopes", "access_token"];
const DEFAULTS_KEYS: [&str; 3] = ["sandboxes", "description", "concurrency"];
const ACCOUNT_KEYS: [&str; 9] = [
    "name",
    "account_name",
    "account_key",
    "connection_string",
    "endpoint_suffix",
    "table_endpoint",
    "description",
    "sandboxes",
    "adopt",
];
const SECRET_KEYS: [&str; 2] = ["env", "file"];

/// Merges the layers and checks every rule.
pub(super) fn check(
    file: &mut File,
    overrides: &Overrides,
    env: &Environment,
) -> Result<Manifest, Diagnostics> {
    let (env_data, env_names) = source::env_layer(env);
    let mut flags = Dict::new();
    let mut flag_names = HashMap::new();
    if let Some(concurrency) = overrides.concurrency {
        let mut defaults = Dict::new();
        defaults.insert("concurrency".into(), Value::from(i64::from(concurrency)));
        flags.insert("defaults".into(), Value::from(defaults));
        flag_names.insert(
            "defaults.concurrency".to_owned(),
            "--concurrency".to_owned(),
        );
    }
    let figment = Figment::new()
        .merge(Layer::new(LAYER_DEFAULTS, source::defaults()))
        .merge(Layer::new(LAYER_FILE, std::mem::take(&mut file.data)))
        .merge(Layer::new(LAYER_ENV, env_data))
        .merge(Layer::new(LAYER_FLAGS, flags));
    let file: &File = file;
    let mut checker = Checker {
        figment: &figment,
        file,
        env,
        env_names,
        flag_names,
        base_dir: file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        diagnostics: Vec::new(),
    };
    let manifest = match figment.find_value("") {
        Ok(root) => checker.root(&root),
        Err(err) => {
            // Our layers cannot fail; say so plainly if one ever does.
            checker.push(Diagnostic::error(
                Location::Unknown,
                None,
                format!("cannot merge the configuration layers: {err}"),
            ));
            None
        }
    };
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(Diagnostic::sort_key);
    match manifest {
        Some(mut manifest) if diagnostics.iter().all(|d| d.is_warning) => {
            manifest.warnings = diagnostics;
            Ok(manifest)
        }
        _ => Err(Diagnostics { items: diagnostics }),
    }
}

struct Checker<'a> {
    figment: &'a Figment,
    file: &'a File,
    env: &'a Environment,
    env_names: HashMap<String, String>,
    flag_names: HashMap<String, String>,
    base_dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

/// Which layer a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Defaults,
    File,
    Env,
    Flags,
}

/// An article and a noun for a value's type, e.g. `an integer`.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(..) | Value::Char(..) => "a string",
        Value::Bool(..) => "a boolean",
        Value::Num(_, Num::F32(_) | Num::F64(_)) => "a float",
        Value::Num(..) => "an integer",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "an array",
    }
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Checker<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn origin(&self, value: &Value) -> Origin {
        match self
            .figment
            .get_metadata(value.tag())
            .map(|m| m.name.as_ref())
        {
            Some(LAYER_FILE) => Origin::File,
            Some(LAYER_ENV) => Origin::Env,
            Some(LAYER_FLAGS) => Origin::Flags,
            _ => Origin::Defaults,
        }
    }

    /// Where a value is; `key` selects the key's position rather than the value's.
    fn locate(&self, path: &str, value: &Value, key: bool) -> Location {
        match self.origin(value) {
            Origin::File => {
                let spans = self.file.spans.get(path);
                let span = spans.and_then(|s| {
                    if key {
                        s.key.as_ref()
                    } else {
                        s.value.as_ref()
                    }
                });
                self.file.location(span)
            }
            Origin::Env => self
                .env_names
                .get(path)
                .map_or(Location::Unknown, |n| Location::Env(n.clone())),
            Origin::Flags => self
                .flag_names
                .get(path)
                .map_or(Location::Unknown, |n| Location::Flag(n.clone())),
            Origin::Defaults => Location::Unknown,
        }
    }

    fn at(&self, path: &str, value: &Value) -> Location {
        self.locate(path, value, false)
    }

    fn kind_at(&self, path: &str, value: &Value) -> &'static str {
        let datetime = self.origin(value) == Origin::File
            && self.file.spans.get(path).is_some_and(|s| s.datetime);
        if datetime { "a date-time" } else { kind(value) }
    }

    fn error(&mut self, path: &str, value: &Value, message: impl Into<String>) {
        let location = self.at(path, value);
        self.push(Diagnostic::error(location, Some(path.to_owned()), message));
    }

    fn error_hint(
        &mut self,
        path: &str,
        value: &Value,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let location = self.at(path, value);
        self.push(Diagnostic::error(location, Some(path.to_owned()), message).with_hint(hint));
    }

    fn wrong_type(&mut self, path: &str, value: &Value, expected: &str) {
        let found = self.kind_at(path, value);
        self.error(path, value, format!("expected {expected}, found {found}"));
    }

    /// A table with only `allowed` keys; unknown keys are reported, with a suggestion.
    fn table<'v>(&mut self, path: &str, value: &'v Value, allowed: &[&str]) -> Option<&'v Dict> {
        let Value::Dict(_, dict) = value else {
            self.wrong_type(path, value, "a table");
            return None;
        };
        for (key, child) in dict {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let child_path = source::join(path, key);
            let location = self.locate(&child_path, child, true);
            let where_ = if path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{path}`")
            };
            let mut diagnostic = Diagnostic::error(
                location,
                Some(child_path.clone()),
                format!("unknown key `{key}` {where_}"),
            );
            diagnostic = match did_you_mean(key, allowed) {
                Some(suggestion) => diagnostic.with_hint(format!("did you mean `{suggestion}`?")),
                None => diagnostic.with_hint(format!("known keys: {}", quote_list(allowed))),
            };
            self.push(diagnostic);
        }
        Some(dict)
    }

    /// A required key is missing from the table at `path`.
    fn missing(&mut self, path: &str, table: &Value, key: &str, hint: &str) {
        let location = match self.at(path, table) {
            // The table exists only in the built-in defaults: point at the file.
            Location::Unknown => self.file.location(None),
            location => location,
        };
        let full = source::join(path, key);
        self.push(
            Diagnostic::error(
                location,
                Some(full),
                format!("missing required key `{key}`"),
            )
            .with_hint(hint.to_owned()),
        );
    }

    fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value {
            // TOML date-times arrive as strings; they are not strings to us.
            Value::String(_, s) if self.kind_at(path, value) == "a string" => Some(s),
            _ => {
                self.wrong_type(path, value, "a string");
                None
            }
        }
    }

    fn root(&mut self, root: &Value) -> Option<Manifest> {
        let dict = self.table("", root, &TOP_KEYS)?;
        let platform = match dict.get("platform") {
            Some(value) => self.platform(value),
            None => None,
        };
        let auth = dict.get("auth").and_then(|value| self.auth(value));
        let defaults = dict.get("defaults").and_then(|value| self.defaults(value));
        let accounts = match dict.get("accounts") {
            None => {
                self.push(
                    Diagnostic::error(self.file.location(None), Some("accounts".into()), "the manifest declares no accounts")
                        .with_hint("add at least one [[accounts]] table with `name`, `account_name` and `account_key`"),
                );
                None
            }
            Some(value) => self.accounts(value, defaults.as_ref()),
        };
        Some(Manifest {
            path: self.file.path.clone(),
            platform: platform?,
            auth: auth?,
            concurrency: defaults.as_ref()?.concurrency?,
            accounts: accounts?,
            warnings: Vec::new(),
        })
    }

    fn url(&mut self, path: &str, value: &Value, loopback_http: bool) -> Option<url::Url> {
        let raw = self.string(path, value)?;
        let url = match url::Url::parse(raw.trim()) {
            Ok(url) => url,
            Err(err) => {
                self.error(
                    path,
                    value,
                    format!("expected a URL, found `{raw}` ({err})"),
                );
                return None;
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            self.error_hint(
                path,
                value,
                "the URL must not contain a user name or password",
                "remove the `user:password@` part",
            );
            return None;
        }
        match url.scheme() {
            "https" => Some(url),
            "http" if !loopback_http => Some(url),
            "http" if crate::url_policy::is_loopback(&url) => Some(url),
            "http" => {
                self.error_hint(
                    path,
                    value,
                    format!(
                        "`http` is allowed only for a loopback host, found host `{}`",
                        url.host_str().unwrap_or_default()
                    ),
                    "use https (plain http is accepted for 127.0.0.0/8, ::1 and localhost)",
                );
                None
            }
            other => {
                self.error(
                    path,
                    value,
                    format!("expected an http or https URL, found scheme `{other}`"),
                );
                None
            }
        }
    }

    fn platform(&mut self, value: &Value) -> Option<Platform> {
        let dict = self.table("platform", value, &PLATFORM_KEYS)?;
        let endpoint = dict
            .get("endpoint")
            .and_then(|v| self.url("platform.endpoint", v, true));
        let org_id = match dict.get("org_id") {
            None => {
                self.missing("platform", value, "org_id", "the IMS organization, like `0123456789ABCDEF01234567@AdobeOrg`");
                None
            }
            Some(v) => self.string("platform.org_id", v).and_then(|org| {
                let prefix = org.strip_suffix("@AdobeOrg");
                if prefix.is_some_and(|p| !p.trim().is_empty() && !p.contains(char::is_whitespace)) {
                    Some(org.to_owned())
                } else {
                    self.error_hint(
                        "platform.org_id",
                        v,
                        format!("expected an organization id ending in `@AdobeOrg`, found `{org}`"),
                        "copy it from the Adobe Developer Console, e.g. `0123456789ABCDEF01234567@AdobeOrg`",
                    );
                    None
                }
            }),
        };
        let api_key = match dict.get("api_key") {
            None => {
                self.missing(
                    "platform",
                    value,
                    "api_key",
                    "the client id of the Developer Console project",
                );
                None
            }
            Some(v) => self.string("platform.api_key", v).and_then(|key| {
                if key.trim().is_empty() {
                    self.error_hint(
                        "platform.api_key",
                        v,
                        "expected a non-empty client id, found an empty string",
                        "the client id of the Developer Console project",
                    );
                    None
                } else {
                    Some(key.trim().to_owned())
                }
            }),
        };
        Some(Platform {
            endpoint: endpoint?,
            org_id: org_id?,
            api_key: api_key?,
        })
    }

    fn auth(&mut self, value: &Value) -> Option<Auth> {
        let dict = self.table("auth", value, &AUTH_KEYS)?;
        let token_url = dict
            .get("token_url")
            .and_then(|v| self.url("auth.token_url", v, true));
        let scopes = match dict.get("scopes") {
            None => Some(
                super::DEFAULT_SCOPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            Some(v) => self.strings("auth.scopes", v).and_then(|scopes| {
                if let Some(i) = scopes
                    .iter()
                    .position(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
                {
                    let path = format!("auth.scopes[{i}]");
                    let element = match v {
                        Value::Array(_, items) => &items[i],
                        _ => v,
                    };
                    self.error(
                        &path,
                        element,
                        "a scope must be a non-empty word without spaces",
                    );
                    None
                } else {
                    Some(scopes)
                }
            }),
        };
        let client_secret = dict.get("client_secret");
        let access_token = dict.get("access_token");
        match (client_secret, access_token) {
            (Some(secret), None) => {
                let secret = self.secret("auth.client_secret", secret);
                Some(Auth::ClientCredentials {
                    token_url: token_url?,
                    client_secret: secret?,
                    scopes: scopes?,
                })
            }
            (None, Some(token)) => self
                .secret("auth.access_token", token)
                .map(Auth::AccessToken),
            (Some(_), Some(token)) => {
                self.error_hint(
                    "auth.access_token",
                    token,
                    "`client_secret` and `access_token` are both set; exactly one way to authenticate is allowed",
                    "keep `client_secret` for unattended runs (a token expires), or `access_token` alone",
                );
                None
            }
            (None, None) => {
                self.missing(
                    "auth",
                    value,
                    "client_secret",
                    "set `client_secret = { env = \"AEP_CLIENT_SECRET\" }` (OAuth Server-to-Server) or `access_token = { env = \"AEP_ACCESS_TOKEN\" }`",
                );
                None
            }
        }
    }

    fn strings(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let Value::Array(_, items) = value else {
            self.wrong_type(path, value, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(_, s) => out.push(s.clone()),
                _ => {
                    self.wrong_type(&format!("{path}[{i}]"), item, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A list of sandbox names: non-empty, each valid, none twice.
    fn sandboxes(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let names = self.strings(path, value)?;
        let Value::Array(_, items) = value else {
            return None;
        };
        if names.is_empty() {
            self.error_hint(
                path,
                value,
                "expected at least one sandbox, found an empty list",
                format!("e.g. `sandboxes = [\"{}\"]`", DEFAULT_SANDBOXES[0]),
            );
            return None;
        }
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            let element_path = format!("{path}[{i}]");
            let element = &items[i];
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                self.error_hint(
                    &element_path,
                    element,
                    format!("invalid sandbox name `{}`", name.escape_debug()),
                    "sandbox names are lowercase letters, digits and `-`",
                );
                ok = false;
            } else if names[..i].contains(name) {
                self.error(
                    &element_path,
                    element,
                    format!("sandbox `{name}` is listed twice"),
                );
                ok = false;
            }
        }
        ok.then_some(names)
    }

    fn defaults(&mut self, value: &Value) -> Option<Defaults> {
        let dict = self.table("defaults", value, &DEFAULTS_KEYS)?;
        let sandboxes = dict
            .get("sandboxes")
            .and_then(|v| self.sandboxes("defaults.sandboxes", v));
        let description = dict
            .get("description")
            .and_then(|v| self.string("defaults.description", v))
            .map(str::to_owned);
        let concurrency = dict.get("concurrency").and_then(|v| {
            let path = "defaults.concurrency";
            match v {
                Value::Num(_, n) if !matches!(n, Num::F32(_) | Num::F64(_)) => {
                    let n = n
                        .to_u128()
                        .map(|u| i128::try_from(u).unwrap_or(i128::MAX))
                        .or(n.to_i128())
                        .unwrap_or(i128::MAX);
                    match u32::try_from(n) {
                        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Some(n),
                        _ => {
                            self.error(
                                path,
                                v,
                                format!(
                                    "expected an integer from 1 to {MAX_CONCURRENCY}, found {n}"
                                ),
                            );
                            None
                        }
                    }
                }
                _ => {
                    self.wrong_type(path, v, &format!("an integer from 1 to {MAX_CONCURRENCY}"));
                    None
                }
            }
        });
        Some(Defaults {
            sandboxes,
            description,
            concurrency,
        })
    }

    /// A secret reference, resolved. Literal secrets in the file get a warning.
    fn secret(&mut self, path: &str, value: &Value) -> Option<Secret> {
        let reference = match value {
            Value::String(_, s) => SecretRef::Literal(Secret::new(s.clone())),
            Value::Dict(_, dict) => {
                self.table(path, value, &SECRET_KEYS)?;
                let env = dict.get("env");
                let file = dict.get("file");
                match (env, file) {
                    (Some(v), None) => {
                        let name = self.string(&source::join(path, "env"), v)?;
                        if name.is_empty() || name.contains(['=', '\0']) {
                            self.error(
                                &source::join(path, "env"),
                                v,
                                "expected an environment variable name",
                            );
                            return None;
                        }
                        SecretRef::Env(name.to_owned())
                    }
                    (None, Some(v)) => {
                        let name = self.string(&source::join(path, "file"), v)?;
                        if name.trim().is_empty() {
                            self.error(
                                &source::join(path, "file"),
                                v,
                                "expected a file path, found an empty string",
                            );
                            return None;
                        }
                        SecretRef::File(PathBuf::from(name))
                    }
                    (Some(_), Some(_)) => {
                        self.error_hint(
                            path,
                            value,
                            "a secret is either `env` or `file`, not both",
                            "keep one of them",
                        );
                        return None;
                    }
                    (None, None) => {
                        if dict.keys().all(|k| SECRET_KEYS.contains(&k.as_str())) {
                            self.error_hint(
                                path,
                                value,
                                "empty secret reference",
                                "write `{ env = \"VAR\" }` or `{ file = \"path\" }`",
                            );
                        }
                        return None;
                    }
                }
            }
            _ => {
                // Never show the value: it may be a secret written in the wrong shape.
                let found = self.kind_at(path, value);
                self.error_hint(
                    path,
                    value,
                    format!("expected a secret reference, found {found}"),
                    "write `{ env = \"VAR\" }` or `{ file = \"path\" }`",
                );
                return None;
            }
        };
        self.resolve(path, value, reference)
    }

    fn resolve(&mut self, path: &str, value: &Value, reference: SecretRef) -> Option<Secret> {
        match reference {
            SecretRef::Literal(secret) => {
                if secret.is_blank() {
                    self.error(path, value, "the secret is empty");
                    return None;
                }
                if self.origin(value) == Origin::File {
                    let location = self.at(path, value);
                    self.push(
                        Diagnostic::warning(location, Some(path.to_owned()), "a secret is written in the manifest itself")
                            .with_hint("use `{ env = \"VAR\" }` or `{ file = \"path\" }` to keep secrets out of the file"),
                    );
                }
                Some(secret)
            }
            SecretRef::Env(name) => {
                let path_env = source::join(path, "env");
                let at = value_at(value, "env");
                match self.env.get(&name).map(|v| v.to_str()) {
                    None => {
                        self.error_hint(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is not set"),
                            format!("export {name}=… before running atsprov"),
                        );
                        None
                    }
                    Some(None) => {
                        self.error(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is not valid UTF-8"),
                        );
                        None
                    }
                    Some(Some(v)) if v.trim().is_empty() => {
                        self.error(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is set but empty"),
                        );
                        None
                    }
                    Some(Some(v)) => Some(Secret::new(v.trim())),
                }
            }
            SecretRef::File(relative) => {
                let path_file = source::join(path, "file");
                let at = value_at(value, "file");
                let full = self.base_dir.join(&relative);
                let shown = full.display().to_string();
                let bytes = match std::fs::metadata(&full) {
                    Ok(meta) if meta.is_dir() => {
                        self.error(
                            &path_file,
                            at,
                            format!("secret file `{shown}` is a directory"),
                        );
                        return None;
                    }
                    Ok(meta) => {
                        self.check_permissions(&path_file, at, &shown, &meta);
                        std::fs::read(&full)
                    }
                    Err(err) => Err(err),
                };
                let bytes = match bytes {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        self.error_hint(
                            &path_file,
                            at,
                            format!(
                                "cannot read secret file `{shown}`: {}",
                                source::io_reason(&err)
                            ),
                            "the path is relative to the manifest's directory",
                        );
                        return None;
                    }
                };
                match String::from_utf8(bytes) {
                    Err(_) => {
                        self.error(
                            &path_file,
                            at,
                            format!("secret file `{shown}` is not valid UTF-8"),
                        );
                        None
                    }
                    Ok(text) if text.trim().is_empty() => {
                        self.error(&path_file, at, format!("secret file `{shown}` is empty"));
                        None
                    }
                    Ok(text) => Some(Secret::new(text.trim())),
                }
            }
        }
    }

    #[cfg(unix)]
    fn check_permissions(
        &mut self,
        path: &str,
        value: &Value,
        shown: &str,
        meta: &std::fs::Metadata,
    ) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o044 != 0 {
            let location = self.at(path, value);
            self.push(
                Diagnostic::warning(
                    location,
                    Some(path.to_owned()),
                    format!("secret file `{shown}` is readable by group or others"),
                )
                .with_hint(format!("chmod 600 {shown}")),
            );
        }
    }

    #[cfg(not(unix))]
    fn check_permissions(&mut self, _: &str, _: &Value, _: &str, _: &std::fs::Metadata) {}

    fn accounts(&mut self, value: &Value, defaults: Option<&Defaults>) -> Option<Vec<Account>> {
        let Value::Array(_, items) = value else {
            self.wrong_type("accounts", value, "an array of tables ([[accounts]])");
            return None;
        };
        if items.is_empty() {
            self.error_hint(
                "accounts",
                value,
                "the manifest declares no accounts",
                "add at least one [[accounts]] table",
            );
            return None;
        }
        let mut accounts = Vec::with_capacity(items.len());
        let mut ok = true;
        // (sandbox, name) -> index of the first account that declared it.
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("accounts[{i}]");
            let Some(account) = self.account(&path, item, defaults) else {
                ok = false;
                continue;
            };
            for sandbox in &account.sandboxes {
                let key = (sandbox.clone(), account.name.clone());
                if let Some(&first) = seen.get(&key) {
                    let name_path = format!("{path}.name");
                    let name_value = value_at(item, "name");
                    let first_line = self.at(&format!("accounts[{first}]"), &items[first]);
                    let first_at = match first_line {
                        Location::File {
                            line: Some(line), ..
                        } => format!("`accounts[{first}]` (line {line})"),
                        _ => format!("`accounts[{first}]`"),
                    };
                    self.error_hint(
                        &name_path,
                        name_value,
                        format!(
                            "connection name `{}` is declared twice in sandbox `{sandbox}`",
                            account.name
                        ),
                        format!("first declared by {first_at}; names are unique per sandbox"),
                    );
                    ok = false;
                } else {
                    seen.insert(key, i);
                }
            }
            accounts.push(account);
        }
        ok.then_some(accounts)
    }

    fn account(
        &mut self,
        path: &str,
        value: &Value,
        defaults: Option<&Defaults>,
    ) -> Option<Account> {
        let dict = self.table(path, value, &ACCOUNT_KEYS)?;
        let child = |key: &str| source::join(path, key);
        let name = match dict.get("name") {
            None => {
                self.missing(
                    path,
                    value,
                    "name",
                    "the connection's name in AEP, e.g. `name = \"sales-eu\"`",
                );
                None
            }
            Some(v) => self.string(&child("name"), v).and_then(|name| {
                if name.trim().is_empty() {
                    self.error(
                        &child("name"),
                        v,
                        "expected a non-empty connection name, found an empty string",
                    );
                    None
                } else if name.trim() != name {
                    self.error_hint(
                        &child("name"),
                        v,
                        "the connection name starts or ends with white space",
                        "remove the spaces",
                    );
                    None
                } else {
                    Some(name.to_owned())
                }
            }),
        };
        let endpoint_suffix = dict.get("endpoint_suffix").and_then(|v| {
            let suffix = self.string(&child("endpoint_suffix"), v)?;
            if connstr::check_endpoint_suffix(suffix) {
                Some(suffix.to_owned())
            } else {
                self.error_hint(
                    &child("endpoint_suffix"),
                    v,
                    format!(
                        "expected a host name suffix like `core.windows.net`, found `{}`",
                        suffix.escape_debug()
                    ),
                    "no scheme and no path: e.g. `core.chinacloudapi.cn`",
                );
                None
            }
        });
        let table_endpoint = match dict.get("table_endpoint") {
            None => Some(None),
            Some(v) => self.url(&child("table_endpoint"), v, false).map(Some),
        };
        let credentials = self.credentials(path, value, dict, endpoint_suffix.as_deref());
        let sandboxes = match dict.get("sandboxes") {
            Some(v) => self.sandboxes(&child("sandboxes"), v),
            None => defaults.and_then(|d| d.sandboxes.clone()),
        };
        let description = match dict.get("description") {
            Some(v) => self.string(&child("description"), v).map(str::to_owned),
            None => defaults.and_then(|d| d.description.clone()),
        };
        let adopt = match dict.get("adopt") {
            None => Some(false),
            Some(Value::Bool(_, b)) => Some(*b),
            Some(v) => {
                self.wrong_type(&child("adopt"), v, "a boolean (true or false)");
                None
            }
        };
        let (account_name, connection) = credentials?;
        let table_endpoint = table_endpoint?.or(connection.table_endpoint.clone());
        Some(Account {
            name: name?,
            account_name,
            sandboxes: sandboxes?,
            description: description?,
            connection_string: connection.to_secret(),
            table_endpoint,
            adopt: adopt?,
        })
    }

    /// `account_name` + `account_key`, or `connection_string`.
    fn credentials(
        &mut self,
        path: &str,
        value: &Value,
        dict: &Dict,
        endpoint_suffix: Option<&str>,
    ) -> Option<(String, ConnectionString)> {
        let child = |key: &str| source::join(path, key);
        let account_name = dict.get("account_name");
        let account_key = dict.get("account_key");
        let connection_string = dict.get("connection_string");
        if let Some(cs_value) = connection_string {
            if let Some(other) = account_name.or(account_key) {
                let key = if account_name.is_some() {
                    "account_name"
                } else {
                    "account_key"
                };
                self.error_hint(
                    &child(key),
                    other,
                    format!("`{key}` cannot be combined with `connection_string`"),
                    "give either `connection_string`, or `account_name` and `account_key`",
                );
                return None;
            }
            if let Some(suffix_value) = dict.get("endpoint_suffix") {
                self.error_hint(
                    &child("endpoint_suffix"),
                    suffix_value,
                    "`endpoint_suffix` cannot be combined with `connection_string`",
                    "put `EndpointSuffix=…` in the connection string",
                );
                return None;
            }
            let path = child("connection_string");
            let secret = self.secret(&path, cs_value)?;
            return match ConnectionString::parse(secret.expose()) {
                Ok(parsed) => Some((parsed.account_name.clone(), parsed)),
                Err(err) => {
                    let hint = match err {
                        connstr::ConnStrError::Sas => {
                            "create the connection from the account key: `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`"
                        }
                        _ => {
                            "the form is `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`"
                        }
                    };
                    self.error_hint(
                        &path,
                        cs_value,
                        format!("invalid connection string: {err}"),
                        hint,
                    );
                    None
                }
            };
        }
        let name =
            match account_name {
                None => {
                    self.missing(
                        path,
                        value,
                        "account_name",
                        "the storage account's name, or give `connection_string` instead",
                    );
                    None
                }
                Some(v) => self.string(&child("account_name"), v).and_then(|name| {
                    match connstr::check_account_name(name) {
                        Ok(()) => Some(name.to_owned()),
                        Err(err) => {
                            self.error_hint(
                        &child("account_name"),
                        v,
                        format!("invalid storage account name `{}`: {err}", name.escape_debug()),
                        "Azure storage account names are 3 to 24 lowercase letters and digits",
                    );
                            None
                        }
                    }
                }),
            };
        let key = match account_key {
            None => {
                self.missing(
                    path,
                    value,
                    "account_key",
                    "e.g. `account_key = { env = \"SALES_EU_KEY\" }`",
                );
                None
            }
            Some(v) => {
                let key_path = child("account_key");
                self.secret(&key_path, v).and_then(|key| match connstr::check_account_key(key.expose()) {
                    Ok(()) => Some(key),
                    Err(err) => {
                        self.error_hint(
                            &key_path,
                            v,
                            format!("the account key {err}"),
                            "copy key1 or key2 from the storage account's Access keys page (88 base64 characters)",
                        );
                        None
                    }
                })
            }
        };
        let name = name?;
        let connection = ConnectionString::new(&name, key?, endpoint_suffix);
        Some((name, connection))
    }
}

/// The value under `key` of a table value, or the value itself.
fn value_at<'v>(value: &'v Value, key: &str) -> &'v Value {
    match value {
        Value::Dict(_, dict) => dict.get(key).unwrap_or(value),
        _ => value,
    }
}

/// `[defaults]`, as far as it is valid.
struct Defaults {
    sandboxes: Option<Vec<String>>,
    description: Option<String>,
    concurrency: Option<u32>,
}
