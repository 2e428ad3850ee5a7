//! The rules: walks the merged figment value and builds a [`Manifest`] or every diagnostic.
//!
//! [`Checker`] holds what every rule needs (where a value came from, how to
//! report it); each section's rules live in a submodule of their own.

mod accounts;
mod auth;
mod defaults;
mod platform;
mod secrets;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::Serialized;
use figment::value::{Dict, Tag, Value};

use super::source::{
    self, File, LAYER_DEFAULTS, LAYER_ENV, LAYER_FILE, LAYER_FLAGS, Layer, Named, SpanMap,
};
use super::{Environment, Manifest, Overrides};
use crate::diagnostic::{Diagnostic, Diagnostics, Location, did_you_mean};
use values::ValueKind;

const TOP_KEYS: [&str; 5] = ["owner", "platform", "auth", "defaults", "accounts"];

/// An `[[accounts]]` piece of the file did not stand alone: parse the file
/// whole and check again (see [`source::parse`]).
pub(super) struct NotInPieces;

/// Merges the layers and checks every rule.
pub(super) fn check(
    file: &mut File,
    overrides: &Overrides,
    env: &Environment,
) -> Result<Result<Manifest, Diagnostics>, NotInPieces> {
    let (env_data, env_names, env_errors) = source::env_layer(env);
    let mut flag_names = HashMap::new();
    // The accounts still in pieces are converted one at a time while the
    // rules run, unless the environment has accounts of its own to merge.
    if env_data.contains_key("accounts") && !file.convert_pieces() {
        return Err(NotInPieces);
    }
    let in_pieces = !file.pieces.is_empty();
    // The accounts are most of the tree, and figment would hold them twice
    // (its layers and the merged copy `find_value` returns). When no other
    // layer has an `accounts` key, the file's merge as they are: they go
    // around figment, an empty array holding their place, and are put back
    // into the merged tree with the file's tag (see `put_back`).
    let mut file_data = std::mem::take(&mut file.data);
    let accounts = if env_data.contains_key("accounts") {
        None
    } else if in_pieces {
        // Their place, for the merged tree to give it the file's tag.
        file_data.insert("accounts".to_owned(), Value::from(Vec::<Value>::new()));
        None
    } else {
        file_data
            .get_mut("accounts")
            .map(|value| std::mem::replace(value, Value::from(Vec::<Value>::new())))
    };
    replaced_by_env(&mut file_data, &env_data);
    let mut figment = Figment::new()
        .merge(Named::new(
            LAYER_DEFAULTS,
            Serialized::defaults(source::BuiltIn::default()),
        ))
        .merge(Layer::new(LAYER_FILE, file_data))
        .merge(Layer::new(LAYER_ENV, env_data));
    for (key, flag, value) in [
        (
            "defaults.concurrency",
            "--concurrency",
            overrides.concurrency,
        ),
        (
            "defaults.max_deletes",
            "--max-deletes",
            overrides.max_deletes,
        ),
    ] {
        if let Some(value) = value {
            figment = figment.merge(Named::new(LAYER_FLAGS, Serialized::default(key, value)));
            flag_names.insert(key.to_owned(), flag.to_owned());
        }
    }
    // figment's `find_value` hands back a copy of the merged tree; only the
    // layer each tag stands for is needed after it, so the figment (and the
    // copy it keeps) is dropped before the rules run.
    let mut root = figment.find_value("");
    if let (Ok(root), Some(accounts)) = (&mut root, accounts) {
        put_back(root, accounts);
    }
    let origins = root
        .as_ref()
        .map(|root| origins(&figment, root))
        .unwrap_or_default();
    let root = root.map_err(|err| err.to_string());
    drop(figment);
    let pieces_tag = match &root {
        Ok(Value::Dict(_, dict)) if in_pieces => dict.get("accounts").map(Value::tag),
        _ => None,
    };
    let file: &File = file;
    let mut checker = Checker {
        origins,
        file,
        pieces_tag,
        piece_spans: SpanMap::new(),
        not_in_pieces: false,
        env,
        env_names,
        flag_names,
        base_dir: file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        diagnostics: env_errors,
    };
    let manifest = match root {
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
    if checker.not_in_pieces {
        return Err(NotInPieces);
    }
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(Diagnostic::sort_key);
    Ok(match manifest {
        Some(mut manifest) if diagnostics.iter().all(|d| d.is_warning) => {
            manifest.warnings = diagnostics;
            Ok(manifest)
        }
        _ => Err(Diagnostics { items: diagnostics }),
    })
}

/// The secrets the environment may give whole, as a table.
const SECRET_KEYS_IN_SECTIONS: [(&str, &str); 2] =
    [("auth", "client_secret"), ("auth", "access_token")];

/// A secret the environment gives whole (`{ env = … }` or `{ file = … }`)
/// replaces the file's, as every other value does: figment would merge the
/// two tables into one holding both `env` and `file`.
fn replaced_by_env(file_data: &mut Dict, env_data: &Dict) {
    for (section, key) in SECRET_KEYS_IN_SECTIONS {
        let from_env = matches!(
            env_data.get(section),
            Some(Value::Dict(_, d)) if matches!(d.get(key), Some(Value::Dict(..)))
        );
        if from_env && let Some(Value::Dict(_, file_section)) = file_data.get_mut(section) {
            file_section.remove(key);
        }
    }
}

/// Puts the file's accounts into the merged tree in place of the empty array
/// that held their place, every value with that array's tag (the file's), as
/// figment would have tagged them.
fn put_back(root: &mut Value, mut accounts: Value) {
    let Value::Dict(_, dict) = root else {
        return;
    };
    if let Some(slot) = dict.get_mut("accounts") {
        retag(&mut accounts, slot.tag());
        *slot = accounts;
    }
}

/// Gives a value and everything in it this tag (the depth is bounded by the loader's nesting limit).
pub(super) fn retag(value: &mut Value, tag: Tag) {
    match value {
        Value::String(t, _)
        | Value::Char(t, _)
        | Value::Bool(t, _)
        | Value::Num(t, _)
        | Value::Empty(t, _) => *t = tag,
        Value::Dict(t, dict) => {
            *t = tag;
            dict.values_mut().for_each(|v| retag(v, tag));
        }
        Value::Array(t, items) => {
            *t = tag;
            items.iter_mut().for_each(|v| retag(v, tag));
        }
    }
}

/// The layer each distinct tag in the merged tree came from (a handful: one per layer).
fn origins(figment: &Figment, root: &Value) -> Vec<(Tag, Origin)> {
    let mut origins: Vec<(Tag, Origin)> = Vec::new();
    let mut stack = vec![root];
    while let Some(value) = stack.pop() {
        let tag = value.tag();
        if !origins.iter().any(|(t, _)| *t == tag) {
            let origin = match figment.get_metadata(tag).map(|m| m.name.as_ref()) {
                Some(LAYER_FILE) => Origin::File,
                Some(LAYER_ENV) => Origin::Env,
                Some(LAYER_FLAGS) => Origin::Flags,
                _ => Origin::Defaults,
            };
            origins.push((tag, origin));
        }
        match value {
            Value::Dict(_, dict) => stack.extend(dict.values()),
            Value::Array(_, items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    origins
}

struct Checker<'a> {
    /// The layer of each tag found in the merged tree.
    origins: Vec<(Tag, Origin)>,
    file: &'a File,
    /// The file's tag for its accounts when they are still in pieces
    /// (`file.pieces`), converted one at a time by the account rules.
    pieces_tag: Option<Tag>,
    /// The spans of the piece being checked (`accounts[i]…`).
    piece_spans: SpanMap,
    /// A piece did not stand alone: the result is void; parse whole.
    not_in_pieces: bool,
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
        let tag = value.tag();
        self.origins
            .iter()
            .find(|(t, _)| *t == tag)
            .map_or(Origin::Defaults, |(_, origin)| *origin)
    }

    /// Where a value is; `key` selects the key's position rather than the value's.
    fn locate(&self, path: &str, value: &Value, key: bool) -> Location {
        match self.origin(value) {
            Origin::File => {
                let spans = self.spans(path);
                let span = spans.and_then(|s| if key { s.key } else { s.value });
                self.file.location(span)
            }
            // A key inside a table the variable gave (`{ env = … }`) is
            // located at the variable that holds the table.
            Origin::Env => {
                std::iter::successors(Some(path), |p| p.rsplit_once('.').map(|(up, _)| up))
                    .find_map(|p| self.env_names.get(p))
                    .map_or(Location::Unknown, |n| Location::Env(n.clone()))
            }
            Origin::Flags => self
                .flag_names
                .get(path)
                .map_or(Location::Unknown, |n| Location::Flag(n.clone())),
            Origin::Defaults => Location::Unknown,
        }
    }

    /// The spans of a key path of the file (the piece being checked first).
    fn spans(&self, path: &str) -> Option<&source::Spans> {
        if path.starts_with("accounts")
            && let Some(spans) = self.piece_spans.get(path)
        {
            return Some(spans);
        }
        self.file.spans.get(path)
    }

    fn at(&self, path: &str, value: &Value) -> Location {
        self.locate(path, value, false)
    }

    /// The kind of a value; a TOML date-time (which figment carries as a string) is told apart.
    fn kind_of(&self, path: &str, value: &Value) -> ValueKind {
        let datetime =
            self.origin(value) == Origin::File && self.spans(path).is_some_and(|s| s.datetime);
        if datetime {
            ValueKind::DateTime
        } else {
            ValueKind::of(value)
        }
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
        let found = self.kind_of(path, value).described();
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

    fn root(&mut self, root: &Value) -> Option<Manifest> {
        let dict = self.table("", root, &TOP_KEYS)?;
        let owner = match dict.get("owner") {
            None => Ok(None),
            Some(value) => self.owner(value).map(Some).ok_or(()),
        };
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
            owner: owner.ok()?,
            platform: platform?,
            auth: auth?,
            concurrency: defaults.as_ref()?.concurrency?,
            max_deletes: defaults.as_ref()?.max_deletes?,
            accounts: accounts?,
            warnings: Vec::new(),
        })
    }
}

impl Checker<'_> {
    /// `owner`: the name of the set of connections this manifest manages.
    fn owner(&mut self, value: &Value) -> Option<std::sync::Arc<str>> {
        let owner = self.string("owner", value)?;
        if crate::ownership::is_valid_owner(owner) {
            Some(owner.into())
        } else {
            self.error_hint(
                "owner",
                value,
                format!("invalid owner `{}`", owner.escape_debug()),
                format!(
                    "an owner is 1 to {} letters, digits, `.`, `_` or `-` (it is written into each connection's description), e.g. `owner = \"team-a\"`",
                    crate::ownership::OWNER_MAX_LEN
                ),
            );
            None
        }
    }
}

/// The value under `key` of a table value, or the value itself.
fn value_at<'v>(value: &'v Value, key: &str) -> &'v Value {
    match value {
        Value::Dict(_, dict) => dict.get(key).unwrap_or(value),
        _ => value,
    }
}
