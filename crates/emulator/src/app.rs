//! The request handler: routing, header checks, faults, and each call of the two APIs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::{Dice, RateLimiter};
use crate::listing::ListQuery;
use crate::reply::{self, FlowError, Reply};
use crate::stats::{Outcome, Route, Stats};
use crate::store::{self, Actor, ConnView, Store};
use crate::{Config, MAX_BODY_BYTES};

const FLOW_BASE: &str = "/data/foundation/flowservice";
const TOKEN_PATH: &str = "/ims/token/v3";
const STATS_PATH: &str = "/_emulator/stats";

/// Everything the handler shares.
pub(crate) struct App {
    config: Config,
    store: RwLock<Store>,
    tokens: Mutex<HashMap<String, TokenEntry>>,
    dice: Dice,
    limiter: Option<RateLimiter>,
    stats: Stats,
}

struct TokenEntry {
    client: Arc<str>,
    user: Arc<str>,
    expires: Instant,
}

/// Where a request goes.
enum Target<'a> {
    Token,
    Connections,
    Connection(&'a str),
    Test(&'a str),
    /// `/{account}/Tables`: the Azure Table service imitation.
    Table(&'a str),
    UnknownFlow,
    Unknown,
}

impl App {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            dice: Dice::new(config.seed),
            limiter: config.rate_limit.map(RateLimiter::new),
            store: RwLock::new(Store::default()),
            tokens: Mutex::new(HashMap::new()),
            stats: Stats::new(),
            config,
        }
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_store(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The router: one fallback handler, so every path (odd ones too) gets an answer in Adobe's shapes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

fn request_id() -> String {
    uuid::Uuid::from_u128(fastrand::u128(..)).to_string()
}

fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn target(path: &str) -> Target<'_> {
    // A trailing slash is the same path (the OpenAPI file writes them).
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    if path == TOKEN_PATH {
        return Target::Token;
    }
    let Some(rest) = path.strip_prefix(FLOW_BASE) else {
        return match crate::table::account_of(path) {
            Some(account) => Target::Table(account),
            None => Target::Unknown,
        };
    };
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    if !rest.starts_with('/') {
        return if rest.is_empty() {
            Target::UnknownFlow
        } else {
            Target::Unknown
        };
    }
    match segments.as_slice() {
        ["connections"] => Target::Connections,
        ["connections", id] if !id.is_empty() => Target::Connection(id),
        ["connections", id, "test"] if !id.is_empty() => Target::Test(id),
        _ => Target::UnknownFlow,
    }
}

fn route_kind(target: &Target<'_>, method: &Method) -> Route {
    match (target, method.as_str()) {
        (Target::Token, _) => Route::Token,
        (Target::Table(_), _) => Route::Table,
        (Target::Connections, "GET") => Route::List,
        (Target::Connections, "POST") => Route::Create,
        (Target::Connection(_), "GET") => Route::Get,
        (Target::Connection(_), "PATCH") => Route::Patch,
        (Target::Connection(_), "DELETE") => Route::Delete,
        (Target::Test(_), "GET") => Route::Test,
        _ => Route::Other,
    }
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let id = request_id();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if path.trim_end_matches('/') == STATS_PATH {
        let response = if parts.method == Method::GET {
            let connections = app.read_store().total();
            reply::json(StatusCode::OK, &app.stats.snapshot(connections))
        } else {
            method_not_allowed(&id, "GET")
        };
        return with_request_id(response, &id);
    }
    if !app.config.latency.is_zero() {
        tokio::time::sleep(app.config.latency).await;
    }
    let target = target(&path);
    let route = route_kind(&target, &parts.method);
    if let Target::Table(account) = target {
        // The body is never read: Table requests skip the size check and the Flow faults.
        drop(body);
        let response = crate::table::answer(&app.config, &parts, account, &id);
        let status = response.status();
        tracing::debug!(method = %parts.method, path = %path, status = %status.as_str(), request_id = %id, "request");
        app.stats.record(&Outcome {
            method: parts.method.as_str(),
            route,
            status: status.as_str(),
            wrote: false,
            injected_failure: false,
        });
        return with_request_id(response, &id);
    }
    let mut wrote = false;
    let mut injected_failure = false;
    let reply = match read_body(&parts.headers, body).await {
        Err(()) => Reply::new(
            FlowError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "1413-413",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
            .into_response(&id),
        ),
        Ok(bytes) => app.dispatch(
            &parts,
            &target,
            route,
            &bytes,
            &id,
            &mut wrote,
            &mut injected_failure,
        ),
    };
    let status = if reply.dropped {
        "dropped".to_owned()
    } else {
        reply.response.status().as_str().to_owned()
    };
    tracing::debug!(method = %parts.method, path = %path, status = %status, request_id = %id, "request");
    app.stats.record(&Outcome {
        method: parts.method.as_str(),
        route,
        status: &status,
        wrote,
        injected_failure,
    });
    with_request_id(reply.response, &id)
}

/// The body, or `Err` when it is larger than [`MAX_BODY_BYTES`] (or the client vanished).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ())
}

fn method_not_allowed(id: &str, allow: &'static str) -> Response {
    let mut response = FlowError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "1105-405",
        format!("method not allowed; this path accepts {allow}"),
    )
    .into_response(id);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `{"items": [...], "_links": {...}}`, serialized without an intermediate `Value`.
#[derive(serde::Serialize)]
struct Items<T> {
    items: T,
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    links: Option<Value>,
}

/// A gateway refusal: status, code and message.
type GatewayError = (StatusCode, &'static str, &'static str);

/// Who is calling, once the gateway checks passed.
struct Caller {
    org: String,
    sandbox: String,
    actor: Actor,
}

fn parse_json(bytes: &[u8]) -> Result<Value, FlowError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FlowError::bad_request(
            "1400-400",
            "the request body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        FlowError::bad_request(
            "1400-400",
            format!(
                "the request body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
        )
    })
}

impl App {
    #[allow(clippy::too_many_arguments)] // the request's parts plus the two counters it sets
    fn dispatch(
        &self,
        parts: &Parts,
        target: &Target<'_>,
        route: Route,
        body: &[u8],
        id: &str,
        wrote: &mut bool,
        injected_failure: &mut bool,
    ) -> Reply {
        match target {
            Target::Token => return Reply::new(self.token(parts, body)),
            Target::Unknown => {
                return Reply::new(reply::gateway(
                    StatusCode::NOT_FOUND,
                    "404010",
                    "Route not found",
                ));
            }
            _ => {}
        }
        let caller = match self.gateway_checks(&parts.headers) {
            Ok(caller) => caller,
            Err((status, code, message)) => {
                return Reply::new(reply::gateway(status, code, message));
            }
        };
        if let Some(limiter) = &self.limiter
            && let Err(wait) = limiter.check(&caller.org)
        {
            let mut response =
                reply::gateway(StatusCode::TOO_MANY_REQUESTS, "429050", "Too many requests");
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return Reply::new(response);
        }
        if self.dice.roll(self.config.fail_rate) {
            *injected_failure = true;
            return Reply::new(
                FlowError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "1103-503",
                    "Service is temporarily unavailable; retry later",
                )
                .into_response(id),
            );
        }
        let caller = match self.sandbox_checks(&parts.headers, caller) {
            Ok(caller) => caller,
            Err(err) => return Reply::new(err.into_response(id)),
        };
        let query = parts.uri.query().unwrap_or("");
        let result = match (target, route) {
            (Target::Connections, Route::List) => self.list(&caller, query),
            (Target::Connections, Route::Create) => self.create(&caller, body),
            (Target::Connection(cid), Route::Get) => self.get(&caller, cid),
            (Target::Connection(cid), Route::Patch) => {
                self.patch(&caller, cid, &parts.headers, body)
            }
            (Target::Connection(cid), Route::Delete) => self.delete(&caller, cid),
            (Target::Test(cid), Route::Test) => self.test(&caller, cid),
            (Target::Connections, _) => return Reply::new(method_not_allowed(id, "GET, POST")),
            (Target::Connection(_), _) => {
                return Reply::new(method_not_allowed(id, "GET, PATCH, DELETE"));
            }
            (Target::Test(_), _) => return Reply::new(method_not_allowed(id, "GET")),
            _ => Err(FlowError::new(
                StatusCode::NOT_FOUND,
                "1101-404",
                "no such resource in the Flow Service API",
            )),
        };
        let response = match result {
            Ok(response) => response,
            Err(err) => return Reply::new(err.into_response(id)),
        };
        if route.is_write() && response.status().is_success() {
            *wrote = true;
            if self.dice.roll(self.config.ambiguous_rate) {
                return Reply {
                    response: reply::dropped_connection(),
                    dropped: true,
                };
            }
        }
        Reply::new(response)
    }

    /// `Authorization`, `x-api-key` and the org header, answered in the gateway's shape.
    fn gateway_checks(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let invalid_token = || {
            (
                StatusCode::UNAUTHORIZED,
                "401013",
                "Oauth token is not valid",
            )
        };
        let token = header_text(headers, "authorization")
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(invalid_token)?;
        let (client, user) = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            let entry = tokens.get(token).ok_or_else(invalid_token)?;
            if entry.expires <= Instant::now() {
                tokens.remove(token);
                return Err(invalid_token());
            }
            (entry.client.clone(), entry.user.clone())
        };
        let Some(api_key) = header_text(headers, "x-api-key") else {
            return Err((StatusCode::FORBIDDEN, "403000", "Api Key is required"));
        };
        if let Some((expected, _)) = &self.config.client_credentials
            && api_key != expected
        {
            return Err((StatusCode::FORBIDDEN, "403003", "Api Key is invalid"));
        }
        let Some(org) = header_text(headers, "x-gw-ims-org-id") else {
            return Err((
                StatusCode::BAD_REQUEST,
                "400003",
                "x-gw-ims-org-id header is required",
            ));
        };
        let client = if *client == *api_key {
            client
        } else {
            Arc::from(api_key)
        };
        Ok(Caller {
            org: org.to_owned(),
            sandbox: String::new(),
            actor: Actor { client, user },
        })
    }

    /// `x-sandbox-name`, answered in the Flow Service shape.
    fn sandbox_checks(&self, headers: &HeaderMap, mut caller: Caller) -> Result<Caller, FlowError> {
        let Some(sandbox) = header_text(headers, "x-sandbox-name") else {
            return Err(FlowError::bad_request(
                "2105-400",
                "the `x-sandbox-name` header is required",
            ));
        };
        let exists = match &self.config.sandboxes {
            Some(list) => list.iter().any(|s| s == sandbox),
            None => sandbox
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        };
        if !exists {
            return Err(FlowError::new(
                StatusCode::NOT_FOUND,
                "2100-404",
                format!("sandbox `{}` was not found", store::clip(sandbox)),
            ));
        }
        caller.sandbox = sandbox.to_owned();
        Ok(caller)
    }

    fn token(&self, parts: &Parts, body: &[u8]) -> Response {
        if parts.method != Method::POST {
            let mut response = reply::ims(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "the token endpoint accepts POST only",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let mut fields: HashMap<String, String> = HashMap::new();
        let query = parts.uri.query().unwrap_or("").as_bytes();
        for (key, value) in
            url::form_urlencoded::parse(query).chain(url::form_urlencoded::parse(body))
        {
            fields.insert(key.into_owned(), value.into_owned());
        }
        let field = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let Some(grant_type) = field("grant_type") else {
            return reply::ims(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing grant_type parameter",
            );
        };
        if grant_type != "client_credentials" {
            return reply::ims(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type client_credentials is supported",
            );
        }
        let Some(client_id) = field("client_id") else {
            return reply::ims(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing client_id parameter",
            );
        };
        let Some(client_secret) = field("client_secret") else {
            return reply::ims(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing client_secret parameter",
            );
        };
        if let Some((id, secret)) = &self.config.client_credentials
            && (client_id != id || client_secret != secret)
        {
            return reply::ims(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "invalid client_id or client_secret",
            );
        }
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let expires = now
            .checked_add(self.config.token_ttl)
            .unwrap_or(now + Duration::from_secs(86399 * 365));
        {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if tokens.len() >= 10_000 {
                tokens.retain(|_, entry| entry.expires > now);
            }
            tokens.insert(
                token.clone(),
                TokenEntry {
                    client: Arc::from(client_id),
                    user: Arc::from(format!("{client_id}@AdobeID")),
                    expires,
                },
            );
        }
        reply::json(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.config.token_ttl.as_secs(),
            }),
        )
    }

    fn list(&self, caller: &Caller, query: &str) -> Result<Response, FlowError> {
        let query = ListQuery::parse(query, self.config.page_size)?;
        let store = self.read_store();
        let sandbox = store.sandbox(&caller.org, &caller.sandbox);
        if query.count {
            let count = query.count_in(sandbox);
            return Ok(reply::json(StatusCode::OK, &json!({ "count": count })));
        }
        let (page, more) = query.page(sandbox);
        let sandbox_id = sandbox.map(|s| s.id.clone());
        drop(store);
        let sandbox_id = sandbox_id.as_deref().unwrap_or("");
        let items: Vec<ConnView<'_>> = page
            .iter()
            .map(|c| ConnView::new(c, &caller.org, &caller.sandbox, sandbox_id))
            .collect();
        let links = match (more, page.last()) {
            (true, Some(last)) => Some(json!({ "next": { "href": query.next_href(last) } })),
            _ => None,
        };
        Ok(reply::json(StatusCode::OK, &Items { items, links }))
    }

    fn get(&self, caller: &Caller, id: &str) -> Result<Response, FlowError> {
        let (conn, sandbox_id) = {
            let store = self.read_store();
            let sandbox = store
                .sandbox(&caller.org, &caller.sandbox)
                .ok_or_else(|| store::not_found(id))?;
            let conn = sandbox.get(id).ok_or_else(|| store::not_found(id))?;
            (conn.clone(), sandbox.id.clone())
        };
        let view = ConnView::new(&conn, &caller.org, &caller.sandbox, &sandbox_id);
        Ok(reply::json(
            StatusCode::OK,
            &Items {
                items: [view],
                links: None,
            },
        ))
    }

    fn create(&self, caller: &Caller, body: &[u8]) -> Result<Response, FlowError> {
        let fields = store::check_new(&parse_json(body)?)?;
        let (id, etag) =
            self.write_store()
                .create(&caller.org, &caller.sandbox, fields, &caller.actor);
        let mut response = reply::json(StatusCode::CREATED, &json!({ "id": id, "etag": etag }));
        if let Ok(location) = HeaderValue::from_str(&format!("{FLOW_BASE}/connections/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    fn patch(
        &self,
        caller: &Caller,
        id: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, FlowError> {
        let Some(if_match) = header_text(headers, "if-match") else {
            return Err(crate::patch::if_match_missing());
        };
        let ops = crate::patch::parse(&parse_json(body)?)?;
        let etag = self.write_store().update(
            &caller.org,
            &caller.sandbox,
            id,
            if_match,
            |conn| crate::patch::apply(conn, ops),
            &caller.actor,
        )?;
        Ok(reply::json(
            StatusCode::OK,
            &json!({ "id": id, "etag": etag }),
        ))
    }

    fn delete(&self, caller: &Caller, id: &str) -> Result<Response, FlowError> {
        self.write_store()
            .delete(&caller.org, &caller.sandbox, id)?;
        Ok(reply::no_content())
    }

    fn test(&self, caller: &Caller, id: &str) -> Result<Response, FlowError> {
        let works = {
            let store = self.read_store();
            let sandbox = store
                .sandbox(&caller.org, &caller.sandbox)
                .ok_or_else(|| store::not_found(id))?;
            let conn = sandbox.get(id).ok_or_else(|| store::not_found(id))?;
            store::connection_works(conn)
        };
        Ok(reply::json(StatusCode::OK, &json!({ "result": works })))
    }
}
