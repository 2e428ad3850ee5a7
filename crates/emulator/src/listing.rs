//! `GET /connections`: `property=` filters, `orderby`, `count`, `limit` and stable paging
//! with continuation tokens, over the connections a listing shows at a given instant.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;

use atsprov_model::wire::MAX_PAGE_SIZE;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::FlowError;
use crate::store::{Conn, Sandbox, clip};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Id,
    Name,
    Description,
    SpecId,
    State,
    CreatedAt,
    UpdatedAt,
}

impl Field {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "id" => Field::Id,
            "name" => Field::Name,
            "description" => Field::Description,
            "connectionSpec.id" => Field::SpecId,
            "state" => Field::State,
            "createdAt" => Field::CreatedAt,
            "updatedAt" => Field::UpdatedAt,
            _ => return None,
        })
    }

    fn numeric(self) -> bool {
        matches!(self, Field::CreatedAt | Field::UpdatedAt)
    }

    fn key(self, conn: &Conn) -> Key {
        match self {
            Field::Id => Key::Str(conn.id.clone()),
            Field::Name => Key::Str(conn.name.clone()),
            Field::Description => Key::Str(conn.description.clone().unwrap_or_default()),
            Field::SpecId => Key::Str(conn.spec_id.clone()),
            Field::State => Key::Str(conn.state.clone()),
            Field::CreatedAt => Key::Num(conn.created_at),
            Field::UpdatedAt => Key::Num(conn.updated_at),
        }
    }

    fn text(self, conn: &Conn) -> Option<&str> {
        match self {
            Field::Id => Some(&conn.id),
            Field::Name => Some(&conn.name),
            Field::Description => conn.description.as_deref(),
            Field::SpecId => Some(&conn.spec_id),
            Field::State => Some(&conn.state),
            Field::CreatedAt | Field::UpdatedAt => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug)]
struct Filter {
    field: Field,
    op: Op,
    values: Vec<String>,
    number: i64,
}

impl Filter {
    fn parse(text: &str) -> Result<Self, FlowError> {
        let bad = |code: &'static str, why: &str| {
            FlowError::bad_request(
                code,
                format!("invalid `property` filter `{}`: {why}", clip(text)),
            )
        };
        let split = text
            .find(['=', '!', '<', '>'])
            .ok_or_else(|| bad("1450-400", "expected `field==value`"))?;
        let (name, rest) = text.split_at(split);
        let field = Field::parse(name.trim()).ok_or_else(|| {
            bad("1449-400", "filterable fields are `id`, `name`, `description`, `connectionSpec.id`, `state`, `createdAt`, `updatedAt`")
        })?;
        let (op, value) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .into_iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|v| (op, v)))
        .ok_or_else(|| bad("1450-400", "unknown operator"))?;
        let mut number = 0;
        if field.numeric() {
            number = value
                .trim()
                .parse()
                .map_err(|_| bad("1452-400", "expected a number of epoch milliseconds"))?;
        } else if !matches!(op, Op::Eq | Op::Ne) {
            return Err(bad(
                "1450-400",
                "`>`, `<`, `>=` and `<=` apply to `createdAt` and `updatedAt` only",
            ));
        }
        Ok(Self {
            field,
            op,
            values: value.split(',').map(str::to_owned).collect(),
            number,
        })
    }

    fn matches(&self, conn: &Conn) -> bool {
        if self.field.numeric() {
            let have = match self.field {
                Field::CreatedAt => conn.created_at,
                _ => conn.updated_at,
            };
            return match self.op {
                Op::Eq => have == self.number,
                Op::Ne => have != self.number,
                Op::Gt => have > self.number,
                Op::Ge => have >= self.number,
                Op::Lt => have < self.number,
                Op::Le => have <= self.number,
            };
        }
        let have = self.field.text(conn);
        let any = self.values.iter().any(|v| have == Some(v.as_str()));
        match self.op {
            Op::Ne => !any,
            _ => any,
        }
    }
}

/// A sort position: the sort field's value, then the insertion sequence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Num(i64),
    Str(String),
}

/// What a continuation token carries: the order it belongs to and the last position returned.
#[derive(Serialize, Deserialize)]
struct Cursor {
    o: String,
    k: Option<Key>,
    s: u64,
}

/// A parsed listing request.
pub(crate) struct ListQuery {
    filters: Vec<Filter>,
    raw_filters: Vec<String>,
    order: Option<Field>,
    desc: bool,
    raw_order: Option<String>,
    pub(crate) count: bool,
    limit: u32,
    after: Option<(Option<Key>, u64)>,
}

fn bad_param(name: &str, value: &str, why: &str) -> FlowError {
    FlowError::bad_request(
        "1452-400",
        format!("invalid `{name}` value `{}`: {why}", clip(value)),
    )
}

impl ListQuery {
    /// Parses the query string; `page_size` is the default `limit`.
    pub(crate) fn parse(query: &str, page_size: u32) -> Result<Self, FlowError> {
        let mut filters = Vec::new();
        let mut raw_filters = Vec::new();
        let mut orderby = None;
        let mut count = None;
        let mut limit = None;
        let mut token = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "property" => {
                    let filter = Filter::parse(&value)?;
                    // aepp repeats the parameters on every page; a repeated filter is the same AND.
                    if !raw_filters.contains(&value.to_string()) {
                        filters.push(filter);
                        raw_filters.push(value.into_owned());
                    }
                }
                "orderby" => orderby = Some(value.into_owned()),
                "count" => count = Some(value.into_owned()),
                "limit" => limit = Some(value.into_owned()),
                "continuationToken" => token = Some(value.into_owned()),
                other => {
                    return Err(FlowError::bad_request(
                        "1451-400",
                        format!(
                            "unknown query parameter `{}`; use `property`, `orderby`, `count`, `limit` or `continuationToken`",
                            clip(other)
                        ),
                    ));
                }
            }
        }
        // Python clients send `True`/`False`.
        let count = match count.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                let text = count.as_deref().unwrap_or_default();
                return Err(bad_param("count", text, "expected `true` or `false`"));
            }
        };
        let limit = match limit.as_deref() {
            None => None,
            Some(text) => {
                let n: u32 = text
                    .trim()
                    .parse()
                    .map_err(|_| bad_param("limit", text, "expected a number"))?;
                if n == 0 || n > MAX_PAGE_SIZE {
                    return Err(bad_param(
                        "limit",
                        text,
                        &format!("must be between 1 and {MAX_PAGE_SIZE}"),
                    ));
                }
                Some(n)
            }
        };
        if count && limit.is_some() {
            return Err(FlowError::bad_request(
                "1401-400",
                "`count=true` cannot be combined with `limit`",
            ));
        }
        let (order, desc) = match orderby.as_deref() {
            None | Some("") => (None, false),
            Some(text) => {
                let (desc, name) = match text.strip_prefix('-') {
                    Some(name) => (true, name),
                    None => (false, text.strip_prefix('+').unwrap_or(text)),
                };
                let field = Field::parse(name)
                    .filter(|f| *f != Field::SpecId)
                    .ok_or_else(|| {
                        bad_param(
                            "orderby",
                            text,
                            "sortable fields are `id`, `name`, `description`, `state`, `createdAt`, `updatedAt`",
                        )
                    })?;
                (Some(field), desc)
            }
        };
        let raw_order = orderby.filter(|o| !o.is_empty());
        let order_name = raw_order.clone().unwrap_or_default();
        let after = match token {
            None => None,
            Some(text) => {
                let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text.as_bytes())
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
                    .ok_or_else(|| {
                        bad_param("continuationToken", &text, "not a token this server issued")
                    })?;
                if cursor.o != order_name {
                    return Err(bad_param(
                        "continuationToken",
                        &text,
                        "it belongs to another `orderby`",
                    ));
                }
                Some((cursor.k, cursor.s))
            }
        };
        Ok(Self {
            filters,
            raw_filters,
            order,
            desc,
            raw_order,
            count,
            limit: limit.unwrap_or(page_size),
            after,
        })
    }

    /// Whether the listing is filtered to a list of ids (`property=id==a,b,…`).
    pub(crate) fn by_id(&self) -> bool {
        self.id_list().is_some()
    }

    /// The ids of the first `property=id==…` filter: every connection
    /// listed is one of them (the other filters still apply).
    fn id_list(&self) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|f| f.field == Field::Id && f.op == Op::Eq)
            .map(|f| f.values.as_slice())
    }

    /// Whether `conn` is listed at `now` and matches the filters.
    fn shows(&self, conn: &Conn, now: Instant) -> bool {
        conn.listed_from <= now && self.filters.iter().all(|f| f.matches(conn))
    }

    /// Connections listed at `now` that match the filters.
    pub(crate) fn count_in(&self, sandbox: Option<&Sandbox>, now: Instant) -> usize {
        let Some(sandbox) = sandbox else {
            return 0;
        };
        match self.id_list() {
            // By id: look each distinct id up (an id named twice is one connection).
            Some(ids) => {
                let distinct: std::collections::BTreeSet<&str> =
                    ids.iter().map(String::as_str).collect();
                distinct
                    .into_iter()
                    .filter_map(|id| sandbox.get(id))
                    .filter(|c| self.shows(c, now))
                    .count()
            }
            None => sandbox
                .items
                .values()
                .filter(|c| self.shows(c, now))
                .count(),
        }
    }

    /// One page of the connections listed at `now`, and whether more follow.
    pub(crate) fn page(&self, sandbox: Option<&Sandbox>, now: Instant) -> (Vec<Arc<Conn>>, bool) {
        let Some(sandbox) = sandbox else {
            return (Vec::new(), false);
        };
        let want = self.limit as usize + 1;
        let mut page: Vec<Arc<Conn>> = match self.order {
            None => {
                // Insertion order: walk the sequence index from the cursor.
                let after = self.after.as_ref().map_or(0, |(_, seq)| *seq);
                if let Some(ids) = self.id_list() {
                    // A list of ids: look each up rather than scan the sandbox.
                    let mut found: Vec<&Arc<Conn>> = ids
                        .iter()
                        .filter_map(|id| sandbox.get(id))
                        .filter(|c| c.seq > after && self.shows(c, now))
                        .collect();
                    found.sort_unstable_by_key(|c| c.seq);
                    found.dedup_by_key(|c| c.seq);
                    found.into_iter().take(want).cloned().collect()
                } else {
                    sandbox
                        .items
                        .range(after.saturating_add(1)..)
                        .map(|(_, c)| c)
                        .filter(|c| self.shows(c, now))
                        .take(want)
                        .cloned()
                        .collect()
                }
            }
            Some(field) => {
                let cmp = |a: &(Key, u64), b: &(Key, u64)| {
                    let ord = a.cmp(b);
                    if self.desc { ord.reverse() } else { ord }
                };
                let after = self
                    .after
                    .as_ref()
                    .and_then(|(k, s)| k.clone().map(|k| (k, *s)));
                let mut found: Vec<((Key, u64), &Arc<Conn>)> = sandbox
                    .items
                    .values()
                    .filter(|c| self.shows(c, now))
                    .map(|c| ((field.key(c), c.seq), c))
                    .filter(|(pos, _)| {
                        after
                            .as_ref()
                            .is_none_or(|last| cmp(pos, last) == Ordering::Greater)
                    })
                    .collect();
                if found.len() > want {
                    found.select_nth_unstable_by(want - 1, |a, b| cmp(&a.0, &b.0));
                    found.truncate(want);
                }
                found.sort_unstable_by(|a, b| cmp(&a.0, &b.0));
                found.into_iter().map(|(_, c)| c.clone()).collect()
            }
        };
        let more = page.len() > self.limit as usize;
        page.truncate(self.limit as usize);
        (page, more)
    }

    /// `_links.next.href` after `last`: a path relative to the Flow Service base.
    pub(crate) fn next_href(&self, last: &Conn) -> String {
        let cursor = Cursor {
            o: self.raw_order.clone().unwrap_or_default(),
            k: self.order.map(|f| f.key(last)),
            s: last.seq,
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&cursor).unwrap_or_default());
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("continuationToken", &token);
        query.append_pair("limit", &self.limit.to_string());
        if let Some(order) = &self.raw_order {
            query.append_pair("orderby", order);
        }
        for filter in &self.raw_filters {
            query.append_pair("property", filter);
        }
        format!("/connections?{}", query.finish())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{Actor, Fields, NewConn, Store};

    #[test]
    fn a_lagging_connection_is_listed_from_its_time_on() {
        let mut store = Store::default();
        let t0 = Instant::now();
        let lag = Duration::from_secs(5);
        let actor = Actor {
            client: Arc::from("c"),
            user: Arc::from("u"),
        };
        let new = NewConn {
            fields: Fields {
                name: "a".into(),
                description: None,
                spec_version: "1.0".into(),
                auth_spec_name: "x".into(),
                auth_params: serde_json::Map::new(),
            },
            spec_id: "s".into(),
            state: "enabled".into(),
            in_use: false,
            listed_from: t0 + lag,
        };
        let (id, _) = store.create("org", "prod", new, &actor);
        let query = ListQuery::parse("", 100).unwrap();
        let sandbox = store.sandbox("org", "prod");
        for (at, listed) in [
            (t0, false),
            (t0 + lag - Duration::from_millis(1), false),
            (t0 + lag, true),
            (t0 + lag * 2, true),
        ] {
            assert_eq!(query.count_in(sandbox, at), usize::from(listed));
            let (page, more) = query.page(sandbox, at);
            assert_eq!(
                page.first().map(|c| c.id.as_str()),
                listed.then_some(id.as_str())
            );
            assert!(!more);
        }
        // Reads by id never wait.
        assert!(store.get("org", "prod", &id).is_ok());
    }
}
