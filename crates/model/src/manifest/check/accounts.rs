//! `[[accounts]]`: each account's name, credentials, endpoints, sandboxes and description, and the uniqueness of (sandbox, name).

use std::collections::HashMap;

use figment::value::{Dict, Value};

use super::defaults::Defaults;
use super::{Checker, value_at};
use crate::connstr::{self, ConnStrError, ConnectionString};
use crate::diagnostic::Location;
use crate::manifest::Account;
use crate::manifest::source;

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

/// The accounts checked so far: which (sandbox, name) each declared first.
#[derive(Default)]
struct Declared {
    /// (sandbox, name) -> index of the first account that declared it.
    seen: HashMap<(String, String), usize>,
    ok: bool,
}

impl Checker<'_> {
    pub(super) fn accounts(
        &mut self,
        value: &Value,
        defaults: Option<&Defaults>,
    ) -> Option<Vec<Account>> {
        if let Some(tag) = self.pieces_tag {
            return self.accounts_in_pieces(tag, defaults);
        }
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
        let mut declared = Declared {
            ok: true,
            ..Declared::default()
        };
        for (i, item) in items.iter().enumerate() {
            let first_at = |checker: &Self, first: usize| {
                checker.at(&format!("accounts[{first}]"), &items[first])
            };
            if let Some(account) = self.declare(i, item, defaults, &mut declared, first_at) {
                accounts.push(account);
            }
        }
        declared.ok.then_some(accounts)
    }

    /// The accounts still in `[[accounts]]` pieces: each piece is parsed,
    /// converted and checked in turn, and its values and spans dropped before
    /// the next. Stops (setting `not_in_pieces`) at a piece that does not
    /// stand alone.
    fn accounts_in_pieces(
        &mut self,
        tag: figment::value::Tag,
        defaults: Option<&Defaults>,
    ) -> Option<Vec<Account>> {
        let file = self.file;
        let mut accounts = Vec::with_capacity(file.pieces.len());
        // Where each account starts, to point back at the first of a duplicate.
        let mut starts: Vec<Option<u32>> = Vec::with_capacity(file.pieces.len());
        let mut declared = Declared {
            ok: true,
            ..Declared::default()
        };
        for range in &file.pieces {
            self.piece_spans.clear();
            let first_index = starts.len();
            let Some(items) = source::account_piece(
                &file.text,
                range.clone(),
                first_index,
                &mut self.piece_spans,
            ) else {
                self.not_in_pieces = true;
                return None;
            };
            for (i, mut item) in items.into_iter().enumerate() {
                let index = first_index + i;
                super::retag(&mut item, tag);
                let start = self
                    .piece_spans
                    .get(source::index("accounts", index).as_str())
                    .and_then(|s| s.value);
                starts.push(start);
                let first_at = |checker: &Self, first: usize| checker.file.location(starts[first]);
                if let Some(account) = self.declare(index, &item, defaults, &mut declared, first_at)
                {
                    accounts.push(account);
                }
            }
        }
        self.piece_spans = source::SpanMap::new();
        declared.ok.then_some(accounts)
    }

    /// Checks account `i` and that none of its (sandbox, name) pairs was
    /// declared before; `first_at` locates an earlier account by index.
    fn declare(
        &mut self,
        i: usize,
        item: &Value,
        defaults: Option<&Defaults>,
        declared: &mut Declared,
        first_at: impl Fn(&Self, usize) -> Location,
    ) -> Option<Account> {
        let path = source::index("accounts", i);
        // An account with an error still takes part in the duplicate check
        // when its name and sandboxes could be read: every problem is
        // reported at once, not the duplicate only after the other is fixed.
        let (account, ids) = match self.account(&path, item, defaults) {
            Ok(account) => (Some(account), None),
            Err(ids) => {
                declared.ok = false;
                (None, ids)
            }
        };
        let (name, sandboxes) = match (&account, &ids) {
            (Some(a), _) => (&a.name, &a.sandboxes),
            (None, Some((name, sandboxes))) => (name, sandboxes),
            (None, None) => return None,
        };
        for sandbox in sandboxes {
            let key = (sandbox.clone(), name.clone());
            if let Some(&first) = declared.seen.get(&key) {
                let name_path = format!("{path}.name");
                let name_value = value_at(item, "name");
                let first_at = match first_at(self, first) {
                    Location::File {
                        line: Some(line), ..
                    } => format!("`accounts[{first}]` (line {line})"),
                    _ => format!("`accounts[{first}]`"),
                };
                self.error_hint(
                    &name_path,
                    name_value,
                    format!("connection name `{name}` is declared twice in sandbox `{sandbox}`"),
                    format!("first declared by {first_at}; names are unique per sandbox"),
                );
                declared.ok = false;
            } else {
                declared.seen.insert(key, i);
            }
        }
        account
    }

    /// The account, or (when it has an error, already reported) its name
    /// and sandboxes if those could be read.
    fn account(
        &mut self,
        path: &str,
        value: &Value,
        defaults: Option<&Defaults>,
    ) -> Result<Account, Option<(String, Vec<String>)>> {
        let dict = self.table(path, value, &ACCOUNT_KEYS).ok_or(None)?;
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
            Some(v) => self.url(&child("table_endpoint"), v).map(Some),
        };
        let credentials = self.credentials(
            path,
            value,
            dict,
            endpoint_suffix.as_deref(),
            name.as_deref(),
        );
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
        match (
            name,
            sandboxes,
            credentials,
            description,
            table_endpoint,
            adopt,
        ) {
            (
                Some(name),
                Some(sandboxes),
                Some((account_name, connection)),
                Some(description),
                Some(table_endpoint),
                Some(adopt),
            ) => {
                let table_endpoint = table_endpoint.or(connection.table_endpoint.clone());
                Ok(Account {
                    name,
                    account_name,
                    sandboxes,
                    description,
                    connection_string: connection.to_secret(),
                    table_endpoint,
                    adopt,
                })
            }
            (name, sandboxes, ..) => Err(name.zip(sandboxes)),
        }
    }

    /// `account_name` + `account_key`, or `connection_string`; `name` is the
    /// connection's, when valid, for messages.
    fn credentials(
        &mut self,
        path: &str,
        value: &Value,
        dict: &Dict,
        endpoint_suffix: Option<&str>,
        name: Option<&str>,
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
                    let hint = err.hint().unwrap_or(
                        "the form is `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…`",
                    );
                    let message = match &err {
                        // What `table_endpoint` and the protocol would be
                        // told, and where the string came from: it is not
                        // in the manifest to be looked at.
                        ConnStrError::TableEndpointRefused(refusal) => format!(
                            "`TableEndpoint` in {}: {refusal}",
                            self.connection_string_of(name, cs_value)
                        ),
                        ConnStrError::PlainHttp => {
                            format!("{}: {err}", self.connection_string_of(name, cs_value))
                        }
                        _ => format!("invalid connection string: {err}"),
                    };
                    self.error_hint(&path, cs_value, message, hint);
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

    /// `the connection string of `sales-eu` (environment variable `SALES_CS`)`.
    fn connection_string_of(&self, name: Option<&str>, value: &Value) -> String {
        let source = self.secret_source(value);
        match name {
            Some(name) => format!("the connection string of `{name}` ({source})"),
            None => format!("the connection string ({source})"),
        }
    }
}
