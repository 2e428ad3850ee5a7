//! Request counters behind `GET /_emulator/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::response::Response;
use serde::Serialize;

/// The kind of route a request hit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    Token,
    List,
    Get,
    Create,
    Patch,
    Delete,
    Test,
    Table,
    Other,
}

impl Route {
    const ALL: [Route; 9] = [
        Route::Token,
        Route::List,
        Route::Get,
        Route::Create,
        Route::Patch,
        Route::Delete,
        Route::Test,
        Route::Table,
        Route::Other,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Route::Token => "token",
            Route::List => "list",
            Route::Get => "get",
            Route::Create => "create",
            Route::Patch => "patch",
            Route::Delete => "delete",
            Route::Test => "test",
            Route::Table => "table",
            Route::Other => "other",
        }
    }

    /// The kind of a request from its method and the route pattern it matched.
    pub(crate) fn of(method: &str, pattern: Option<&str>) -> Route {
        let Some(pattern) = pattern else {
            return Route::Other;
        };
        let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
        if pattern == crate::app::TOKEN_PATH {
            return Route::Token;
        }
        if pattern == crate::app::TABLE_PATH {
            return Route::Table;
        }
        let Some(rest) = pattern.strip_prefix(crate::app::FLOW_BASE) else {
            return Route::Other;
        };
        match (method, rest) {
            ("GET", "/connections") => Route::List,
            ("POST", "/connections") => Route::Create,
            ("GET", "/connections/{id}") => Route::Get,
            ("PATCH", "/connections/{id}") => Route::Patch,
            ("DELETE", "/connections/{id}") => Route::Delete,
            ("GET", "/connections/{id}/test") => Route::Test,
            _ => Route::Other,
        }
    }
}

/// What handlers and middleware tell the stats about an answer, carried in its extensions.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Marks {
    /// A create, patch or delete was carried out.
    pub(crate) wrote: bool,
    /// The fail rate answered `1103-503`.
    pub(crate) injected_failure: bool,
    /// The rate limit answered `1102-500` (`--overload-500`).
    pub(crate) overloaded: bool,
    /// The ambiguous fault withheld the answer.
    pub(crate) dropped: bool,
    /// A listing filtered to a list of ids (`property=id==a,b,…`) was answered.
    pub(crate) listed_by_id: bool,
}

/// Sets marks on an answer.
pub(crate) fn mark(response: &mut Response, set: impl FnOnce(&mut Marks)) {
    let extensions = response.extensions_mut();
    if extensions.get::<Marks>().is_none() {
        extensions.insert(Marks::default());
    }
    if let Some(marks) = extensions.get_mut::<Marks>() {
        set(marks);
    }
}

/// What one request ended with.
pub(crate) struct Outcome<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: Route,
    /// The status, or `dropped`.
    pub(crate) status: &'a str,
    pub(crate) marks: Marks,
}

#[derive(Default, Serialize, Clone)]
struct Counts {
    requests: u64,
    by_method: BTreeMap<String, u64>,
    by_route: BTreeMap<&'static str, u64>,
    by_status: BTreeMap<String, u64>,
    by_route_status: BTreeMap<&'static str, BTreeMap<String, u64>>,
    writes: u64,
    rate_limited: u64,
    injected_failures: u64,
    overloaded: u64,
    dropped: u64,
    lists_by_id: u64,
    tokens_issued: u64,
}

/// The counters; one short lock per request.
pub(crate) struct Stats(Mutex<Counts>);

impl Stats {
    pub(crate) fn new() -> Self {
        let mut counts = Counts::default();
        for route in Route::ALL {
            counts.by_route.insert(route.name(), 0);
        }
        Self(Mutex::new(counts))
    }

    pub(crate) fn record(&self, outcome: &Outcome<'_>) {
        fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
            // Look up before inserting: no allocation on the hot path.
            match map.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    map.insert(key.to_owned(), 1);
                }
            }
        }
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.requests += 1;
        bump(&mut c.by_method, outcome.method);
        *c.by_route.entry(outcome.route.name()).or_default() += 1;
        bump(&mut c.by_status, outcome.status);
        bump(
            c.by_route_status.entry(outcome.route.name()).or_default(),
            outcome.status,
        );
        c.writes += u64::from(outcome.marks.wrote);
        c.rate_limited += u64::from(outcome.status == "429");
        c.injected_failures += u64::from(outcome.marks.injected_failure);
        c.overloaded += u64::from(outcome.marks.overloaded);
        c.dropped += u64::from(outcome.status == "dropped");
        c.lists_by_id += u64::from(outcome.marks.listed_by_id);
        c.tokens_issued += u64::from(outcome.route == Route::Token && outcome.status == "200");
    }

    /// The JSON of `GET /_emulator/stats`.
    pub(crate) fn snapshot(&self, connections: usize, tokens_live: usize) -> serde_json::Value {
        let counts = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut value = serde_json::to_value(counts).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("connections".to_owned(), connections.into());
            map.insert("tokens_live".to_owned(), tokens_live.into());
        }
        value
    }
}
