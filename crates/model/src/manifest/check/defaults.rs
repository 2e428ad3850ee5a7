//! `[defaults]`: sandboxes, description, concurrency and max_deletes, and the sandbox-list rule.

use figment::value::{Num, Value};

use super::Checker;
use crate::manifest::source;
use crate::manifest::{DEFAULT_SANDBOXES, MAX_CONCURRENCY, MAX_MAX_DELETES};

const DEFAULTS_KEYS: [&str; 4] = ["sandboxes", "description", "concurrency", "max_deletes"];

/// `[defaults]`, as far as it is valid.
pub(super) struct Defaults {
    pub(super) sandboxes: Option<Vec<String>>,
    pub(super) description: Option<String>,
    pub(super) concurrency: Option<u32>,
    pub(super) max_deletes: Option<u32>,
}

impl Checker<'_> {
    /// A list of sandbox names: non-empty, each valid, none twice.
    pub(super) fn sandboxes(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
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
            let element_path = || source::index(path, i);
            let element = &items[i];
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                self.error_hint(
                    &element_path(),
                    element,
                    format!("invalid sandbox name `{}`", name.escape_debug()),
                    "sandbox names are lowercase letters, digits and `-`",
                );
                ok = false;
            } else if names[..i].contains(name) {
                self.error(
                    &element_path(),
                    element,
                    format!("sandbox `{name}` is listed twice"),
                );
                ok = false;
            }
        }
        ok.then_some(names)
    }

    pub(super) fn defaults(&mut self, value: &Value) -> Option<Defaults> {
        let dict = self.table("defaults", value, &DEFAULTS_KEYS)?;
        let sandboxes = dict
            .get("sandboxes")
            .and_then(|v| self.sandboxes("defaults.sandboxes", v));
        let description = dict
            .get("description")
            .and_then(|v| self.string("defaults.description", v))
            .map(str::to_owned);
        let concurrency = dict
            .get("concurrency")
            .and_then(|v| self.integer_in("defaults.concurrency", v, 1, MAX_CONCURRENCY));
        let max_deletes = dict
            .get("max_deletes")
            .and_then(|v| self.integer_in("defaults.max_deletes", v, 0, MAX_MAX_DELETES));
        Some(Defaults {
            sandboxes,
            description,
            concurrency,
            max_deletes,
        })
    }

    /// An integer within `min..=max`.
    fn integer_in(&mut self, path: &str, v: &Value, min: u32, max: u32) -> Option<u32> {
        match v {
            Value::Num(_, n) if !matches!(n, Num::F32(_) | Num::F64(_)) => {
                let n = n
                    .to_u128()
                    .map(|u| i128::try_from(u).unwrap_or(i128::MAX))
                    .or(n.to_i128())
                    .unwrap_or(i128::MAX);
                match u32::try_from(n) {
                    Ok(n) if (min..=max).contains(&n) => Some(n),
                    _ => {
                        self.error(
                            path,
                            v,
                            format!("expected an integer from {min} to {max}, found {n}"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(path, v, &format!("an integer from {min} to {max}"));
                None
            }
        }
    }
}
