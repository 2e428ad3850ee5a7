//! The layers figment merges, last wins: built-in defaults, the manifest
//! file, `ATSPROV_<SECTION>__<KEY>` variables, then command-line flags; each
//! under a name of ours so a value's origin can be told from its metadata.

use std::collections::HashMap;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::bounded::{self, MAX_NESTING};
use super::source::join;
use super::{Environment, Location};
use crate::diagnostic::Diagnostic;

/// Figment metadata names of the layers, used to tell where a value came from.
pub(super) const LAYER_DEFAULTS: &str = "built-in defaults";
pub(super) const LAYER_FILE: &str = "manifest file";
pub(super) const LAYER_ENV: &str = "environment";
pub(super) const LAYER_FLAGS: &str = "command-line flags";

const ENV_PREFIX: &str = "ATSPROV_";

/// A figment layer made of a ready dictionary, handed over rather than
/// cloned: a 10,000-account manifest is a large tree.
pub(super) struct Layer {
    name: &'static str,
    data: std::cell::RefCell<Option<Dict>>,
}

impl Layer {
    pub(super) fn new(name: &'static str, data: Dict) -> Self {
        Self {
            name,
            data: std::cell::RefCell::new(Some(data)),
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    /// The first call takes the data; figment calls it once per merge.
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut map = Map::new();
        map.insert(Profile::Default, self.data.take().unwrap_or_default());
        Ok(map)
    }
}

/// The built-in defaults layer: what a manifest gets for each key it leaves out.
#[derive(Debug, serde::Serialize)]
pub(super) struct BuiltIn {
    platform: BuiltInPlatform,
    auth: BuiltInAuth,
    defaults: BuiltInDefaults,
}

#[derive(Debug, serde::Serialize)]
struct BuiltInPlatform {
    endpoint: &'static str,
}

#[derive(Debug, serde::Serialize)]
struct BuiltInAuth {
    token_url: &'static str,
    scopes: &'static [&'static str],
}

#[derive(Debug, serde::Serialize)]
struct BuiltInDefaults {
    description: &'static str,
    sandboxes: &'static [&'static str],
    concurrency: u32,
    max_deletes: u32,
}

impl Default for BuiltIn {
    fn default() -> Self {
        Self {
            platform: BuiltInPlatform {
                endpoint: crate::wire::DEFAULT_ENDPOINT,
            },
            auth: BuiltInAuth {
                token_url: crate::wire::DEFAULT_TOKEN_URL,
                scopes: &super::DEFAULT_SCOPES,
            },
            defaults: BuiltInDefaults {
                description: super::DEFAULT_DESCRIPTION,
                sandboxes: &super::DEFAULT_SANDBOXES,
                concurrency: super::DEFAULT_CONCURRENCY,
                max_deletes: super::DEFAULT_MAX_DELETES,
            },
        }
    }
}

/// A figment provider under a name of ours, so [`LAYER_DEFAULTS`] and
/// [`LAYER_FLAGS`] values can be told apart by their metadata.
pub(super) struct Named<P> {
    name: &'static str,
    inner: P,
}

impl<P> Named<P> {
    pub(super) fn new(name: &'static str, inner: P) -> Self {
        Self { name, inner }
    }
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// Keys whose environment values are parsed (arrays, integers, booleans);
/// every other value stays a string, so an all-digit `api_key` stays a string.
const PARSED_ENV_KEYS: [&str; 5] = ["concurrency", "max_deletes", "sandboxes", "scopes", "adopt"];

/// The `ATSPROV_<SECTION>__<KEY>` layer and, for each key path, the variable it came from.
///
/// Variables without `__` (like `ATSPROV_DEMO_ACCOUNT_KEY`, a secret that a
/// manifest references) are not part of the layer. A variable whose keys or
/// parsed value nest deeper than [`MAX_NESTING`] is left out with an error:
/// figment's value parser recurses once per `[`, so `[[[[…` thousands deep
/// would overflow the stack.
///
/// figment's own `Env` provider is not used because it parses every value
/// (an all-digit `api_key` would become an integer) and reads only the
/// process environment.
pub(super) fn env_layer(env: &Environment) -> (Dict, HashMap<String, String>, Vec<Diagnostic>) {
    let mut root = Dict::new();
    let mut names = HashMap::new();
    let mut errors = Vec::new();
    for (name, value) in env.iter() {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let keys: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        let Some(value) = value.to_str() else {
            continue;
        };
        let last = keys.last().map(String::as_str).unwrap_or_default();
        let trimmed = value.trim_start();
        let parse = PARSED_ENV_KEYS.contains(&last) || trimmed.starts_with('{');
        if keys.len() > MAX_NESTING || (parse && bounded::bracket_depth(value) > MAX_NESTING) {
            errors.push(
                Diagnostic::error(
                    Location::Env(name.to_owned()),
                    Some(keys.join(".")).filter(|_| keys.len() <= MAX_NESTING),
                    format!("the value nests deeper than {MAX_NESTING} levels"),
                )
                .with_hint(format!(
                    "unset {name}; a list is written like `[\"openid\", \"AdobeID\"]`"
                )),
            );
            continue;
        }
        let parsed = if parse {
            value
                .parse::<Value>()
                .unwrap_or_else(|never| match never {})
        } else {
            Value::from(value.to_owned())
        };
        // A value that starts with `{` is a table (`{ env = "NAME" }`); one
        // that does not parse as one is a mistake, never a literal secret.
        if trimmed.starts_with('{') && !matches!(parsed, Value::Dict(..)) {
            errors.push(
                Diagnostic::error(
                    Location::Env(name.to_owned()),
                    Some(keys.join(".")),
                    "the value starts with `{` but is not a table",
                )
                .with_hint(
                    "write it like `{ env = \"NAME\" }` or `{ file = \"PATH\" }`, with the closing `}`",
                ),
            );
            continue;
        }
        let mut path = String::new();
        let mut dict = &mut root;
        for (i, key) in keys.iter().enumerate() {
            path = join(&path, key);
            names.entry(path.clone()).or_insert_with(|| {
                let upper: Vec<String> = keys[..=i].iter().map(|k| k.to_uppercase()).collect();
                format!("{ENV_PREFIX}{}", upper.join("__"))
            });
            if i + 1 == keys.len() {
                dict.insert(key.clone(), parsed.clone());
                names.insert(path.clone(), name.to_owned());
                break;
            }
            let entry = dict
                .entry(key.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            let Value::Dict(_, inner) = entry else {
                unreachable!("just made a dictionary");
            };
            dict = inner;
        }
    }
    (root, names, errors)
}
