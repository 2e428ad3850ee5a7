//! Stored connections per organization and sandbox: create, read, update and delete, with
//! the state rules of Adobe's catalog (`1101`, `1404`, `1416`, `1418`, `1457`, `1458`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::FlowError;

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
    pub(crate) spec_id: String,
    pub(crate) spec_version: String,
    pub(crate) auth_spec_name: String,
    pub(crate) auth_params: Map<String, Value>,
    /// `enabled`, `disabled`, `initializing`, `delete-finalizing`, ...
    pub(crate) state: String,
    /// Used by dataflows: DELETE answers `1418-400`.
    pub(crate) in_use: bool,
    /// When listings start to show it (read-after-write lag); reads by id never wait.
    pub(crate) listed_from: Instant,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) created_by: Arc<str>,
    pub(crate) updated_by: Arc<str>,
    pub(crate) created_client: Arc<str>,
    pub(crate) updated_client: Arc<str>,
    pub(crate) etag: String,
}

/// Who writes: the API key of the call and the token's user.
#[derive(Clone)]
pub(crate) struct Actor {
    pub(crate) client: Arc<str>,
    pub(crate) user: Arc<str>,
}

/// What a create sets.
pub(crate) struct NewConn {
    pub(crate) fields: Fields,
    pub(crate) spec_id: String,
    pub(crate) state: String,
    pub(crate) in_use: bool,
    pub(crate) listed_from: Instant,
}

/// The fields a create or patch sets.
pub(crate) struct Fields {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) spec_version: String,
    pub(crate) auth_spec_name: String,
    pub(crate) auth_params: Map<String, Value>,
}

/// States in which a connection may be updated or deleted (`1416-400` otherwise).
const WRITABLE_STATES: [&str; 3] = ["enabled", "disabled", "initializing"];

/// The state a deleted connection lingers in; no update, no delete.
pub(crate) const DELETE_FINALIZING: &str = "delete-finalizing";

impl Store {
    /// The sandbox, if anything was ever written to it.
    pub(crate) fn sandbox(&self, org: &str, sandbox: &str) -> Option<&Sandbox> {
        self.sandboxes.get(&(org.to_owned(), sandbox.to_owned()))
    }

    /// One connection, by id.
    pub(crate) fn get(
        &self,
        org: &str,
        sandbox: &str,
        id: &str,
    ) -> Result<(Arc<Conn>, Arc<str>), FlowError> {
        let sandbox = self.sandbox(org, sandbox).ok_or_else(|| not_found(id))?;
        let conn = sandbox.get(id).ok_or_else(|| not_found(id))?;
        Ok((conn.clone(), sandbox.id.clone()))
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
        new: NewConn,
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
            name: new.fields.name,
            description: new.fields.description,
            spec_id: new.spec_id,
            spec_version: new.fields.spec_version,
            auth_spec_name: new.fields.auth_spec_name,
            auth_params: new.fields.auth_params,
            state: new.state,
            in_use: new.in_use,
            listed_from: new.listed_from,
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

    /// Replaces a connection's fields when `if_match` is its etag and its state allows
    /// updates; returns the new etag.
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
        writable(current, "1457-400", "updated")?;
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
            spec_id: current.spec_id.clone(),
            spec_version: fields.spec_version,
            auth_spec_name: fields.auth_spec_name,
            auth_params: fields.auth_params,
            state: current.state.clone(),
            in_use: current.in_use,
            listed_from: current.listed_from,
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

    /// Deletes a connection whose state allows it and that no dataflow uses.
    pub(crate) fn delete(&mut self, org: &str, sandbox: &str, id: &str) -> Result<(), FlowError> {
        let sandbox = self
            .sandboxes
            .get_mut(&(org.to_owned(), sandbox.to_owned()))
            .ok_or_else(|| not_found(id))?;
        let conn = sandbox.get(id).ok_or_else(|| not_found(id))?;
        writable(conn, "1458-400", "deleted")?;
        if conn.in_use {
            return Err(FlowError::bad_request(
                "1418-400",
                "the connection is used by one or more dataflows; delete the dataflows first",
            ));
        }
        let seq = sandbox.by_id.remove(id).ok_or_else(|| not_found(id))?;
        sandbox.items.remove(&seq);
        self.total -= 1;
        Ok(())
    }
}

/// `Ok` when `conn`'s state allows an update or delete; `finalizing` is the code for
/// `delete-finalizing` (`1457-400` for updates, `1458-400` for deletes).
fn writable(conn: &Conn, finalizing: &'static str, verb: &str) -> Result<(), FlowError> {
    if conn.state == DELETE_FINALIZING {
        return Err(FlowError::bad_request(
            finalizing,
            format!("the connection is in state `{DELETE_FINALIZING}` and cannot be {verb}"),
        ));
    }
    if !WRITABLE_STATES.contains(&conn.state.as_str()) {
        return Err(FlowError::bad_request(
            "1416-400",
            format!(
                "the connection is in state `{}`; it can be {verb} only in state enabled, disabled or initializing",
                clip(&conn.state)
            ),
        ));
    }
    Ok(())
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
        "1101-404",
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
