//! The router: one route per endpoint, and the middleware around them (request ids,
//! latency and stats, gateway checks, faults, sandbox), plus the `/_emulator/*` endpoints.
//!
//! Layers run, outermost first: request id → latency and stats → gateway (token, API key,
//! org, profile) → faults (rate limit, fail rate; the ambiguous drop on the way out) →
//! sandbox → handler. Only Flow Service routes get the last three.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use atsprov_model::wire::{
    ATS_AUTH_SPEC_NAME, ATS_CONNECTION_SPEC_ID, ATS_CONNECTION_SPEC_VERSION,
};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::{self, ApiError, FlowError, GatewayError};
use crate::faults::{Dice, RateLimiter};
use crate::flow;
use crate::stats::{self, Marks, Outcome, Route, Stats};
use crate::store::{self, Actor, Fields, NewConn, Store};
use crate::token::{self, Tokens};
use crate::{Config, MAX_URI_BYTES};

pub(crate) const FLOW_BASE: &str = "/data/foundation/flowservice";
pub(crate) const TOKEN_PATH: &str = "/ims/token/v3";
pub(crate) const TABLE_PATH: &str = "/{account}/Tables";
const STATS_PATH: &str = "/_emulator/stats";
const SEED_PATH: &str = "/_emulator/connections";

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) config: Config,
    store: RwLock<Store>,
    pub(crate) tokens: Tokens,
    dice: Dice,
    limiter: Option<RateLimiter>,
    stats: Stats,
}

impl App {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            dice: Dice::new(config.seed),
            limiter: config.rate_limit.map(RateLimiter::new),
            store: RwLock::new(Store::default()),
            tokens: Tokens::new(config.max_tokens),
            stats: Stats::new(),
            config,
        }
    }

    pub(crate) fn read_store(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_store(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who is calling, once the gateway and sandbox checks passed.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) org: String,
    pub(crate) sandbox: String,
    pub(crate) actor: Actor,
}

/// `path` and `path/`, the same route (the OpenAPI file writes trailing slashes).
fn both<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    path: &str,
    route: axum::routing::MethodRouter<S>,
) -> Router<S> {
    router
        .route(path, route.clone())
        .route(&format!("{path}/"), route)
}

/// The whole application.
pub(crate) fn router(app: Arc<App>) -> Router {
    let not_allowed =
        |allow: &'static str| move || async move { FlowError::method_not_allowed(allow) };
    let flow_path = |path: &str| format!("{FLOW_BASE}{path}");
    let mut flow = Router::new();
    flow = both(
        flow,
        &flow_path("/connections"),
        get(flow::list)
            .post(flow::create)
            .fallback(not_allowed("GET, POST")),
    );
    flow = both(
        flow,
        &flow_path("/connections/{id}"),
        get(flow::get)
            .patch(flow::patch)
            .delete(flow::delete)
            .fallback(not_allowed("GET, PATCH, DELETE")),
    );
    flow = both(
        flow,
        &flow_path("/connections/{id}/test"),
        get(flow::test).fallback(not_allowed("GET")),
    );
    // Every other path under the base names no resource (after the gateway checks).
    let flow = both(flow, FLOW_BASE, any(flow::unknown))
        .route(&flow_path("/{*rest}"), any(flow::unknown))
        .layer(middleware::from_fn_with_state(app.clone(), sandbox))
        .layer(middleware::from_fn_with_state(app.clone(), faults))
        .layer(middleware::from_fn_with_state(app.clone(), gateway));

    let mut api = flow;
    api = both(
        api,
        TOKEN_PATH,
        post(token::issue).fallback(token::not_allowed),
    );
    api = both(api, TABLE_PATH, any(crate::table::handle));
    let api = api
        .fallback(|| async {
            GatewayError::new(StatusCode::NOT_FOUND, "404010", "Route not found")
        })
        .layer(middleware::from_fn_with_state(app.clone(), observe));

    let mut admin = Router::new();
    admin = both(
        admin,
        STATS_PATH,
        get(stats_handler).fallback(not_allowed("GET")),
    );
    admin = both(admin, SEED_PATH, post(seed).fallback(not_allowed("POST")));
    api.merge(admin)
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

/// Gives every request an id: the `x-request-id` header of its answer, and the
/// `report.request-id` of Flow Service errors.
async fn request_id(request: Request, next: Next) -> Response {
    let id: Arc<str> = Arc::from(uuid::Uuid::from_u128(fastrand::u128(..)).to_string());
    let mut response = error::scope_request_id(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Latency before the answer; then the log line and the counters.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if !app.config.latency.is_zero() {
        tokio::time::sleep(app.config.latency).await;
    }
    let method = request.method().clone();
    let route = Route::of(
        method.as_str(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let marks = response
        .extensions_mut()
        .remove::<Marks>()
        .unwrap_or_default();
    let code = response.status();
    let status = if marks.dropped {
        "dropped"
    } else {
        code.as_str()
    };
    tracing::debug!(method = %method, path = %path, status = %status, request_id = %error::request_id(), "request");
    app.stats.record(&Outcome {
        method: method.as_str(),
        route,
        status,
        marks,
    });
    response
}

pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `Authorization`, `x-api-key`, the org header and (with required scopes) the token's
/// profile, answered in the gateway's shape.
async fn gateway(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Gateways refuse a long request line before they look at anything else.
    if request.uri().to_string().len() > MAX_URI_BYTES {
        return Err(
            GatewayError::new(StatusCode::URI_TOO_LONG, "414000", "Request-URI Too Long").into(),
        );
    }
    let headers = request.headers();
    let invalid_token = || {
        GatewayError::new(
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
    let grant = app
        .tokens
        .lookup(token, Instant::now())
        .ok_or_else(invalid_token)?;
    let Some(api_key) = header_text(headers, "x-api-key") else {
        return Err(
            GatewayError::new(StatusCode::FORBIDDEN, "403000", "Api Key is required").into(),
        );
    };
    if let Some((expected, _)) = &app.config.client_credentials
        && api_key != expected
    {
        return Err(
            GatewayError::new(StatusCode::FORBIDDEN, "403003", "Api Key is invalid").into(),
        );
    }
    let Some(org) = header_text(headers, "x-gw-ims-org-id") else {
        return Err(GatewayError::new(
            StatusCode::BAD_REQUEST,
            "400003",
            "x-gw-ims-org-id header is required",
        )
        .into());
    };
    if app.config.required_scopes.is_some() && !grant.profile {
        return Err(
            GatewayError::new(StatusCode::FORBIDDEN, "403025", "Profile is not valid").into(),
        );
    }
    let client = if *grant.client == *api_key {
        grant.client
    } else {
        Arc::from(api_key)
    };
    let caller = Caller {
        org: org.to_owned(),
        sandbox: String::new(),
        actor: Actor {
            client,
            user: grant.user,
        },
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// The rate limit (429, or `1102-500` with `--overload-500`) and the fail rate (`1103-503`)
/// on the way in; the ambiguous drop of a successful write on the way out.
async fn faults(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let org = request
        .extensions()
        .get::<Caller>()
        .map(|c| c.org.clone())
        .unwrap_or_default();
    if let Some(limiter) = &app.limiter
        && let Err(wait) = limiter.check(&org)
    {
        if app.config.overload_500 {
            let mut response = FlowError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "1102-500",
                "Internal server error: the API limit was reached; try again",
            )
            .into_response();
            stats::mark(&mut response, |m| m.overloaded = true);
            return response;
        }
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return GatewayError {
            retry_after: Some(seconds),
            ..GatewayError::new(StatusCode::TOO_MANY_REQUESTS, "429050", "Too many requests")
        }
        .into_response();
    }
    if app.dice.roll(app.config.fail_rate) {
        let mut response = FlowError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "1103-503",
            "Service is temporarily unavailable; retry later",
        )
        .into_response();
        stats::mark(&mut response, |m| m.injected_failure = true);
        return response;
    }
    let mut response = next.run(request).await;
    let wrote = response
        .extensions()
        .get::<Marks>()
        .is_some_and(|m| m.wrote);
    if wrote && response.status().is_success() && app.dice.roll(app.config.ambiguous_rate) {
        response = error::dropped_connection();
        stats::mark(&mut response, |m| {
            m.wrote = true;
            m.dropped = true;
        });
    }
    response
}

/// `x-sandbox-name`, answered in the Flow Service shape.
async fn sandbox(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(sandbox) = header_text(request.headers(), "x-sandbox-name").map(str::to_owned) else {
        return Err(
            FlowError::bad_request("2105-400", "the `x-sandbox-name` header is required").into(),
        );
    };
    if !sandbox_exists(&app.config, &sandbox) {
        return Err(FlowError::new(
            StatusCode::NOT_FOUND,
            "2100-404",
            format!("sandbox `{}` was not found", store::clip(&sandbox)),
        )
        .into());
    }
    if let Some(caller) = request.extensions_mut().get_mut::<Caller>() {
        caller.sandbox = sandbox;
    }
    Ok(next.run(request).await)
}

/// Without [`Config::sandboxes`], a sandbox exists when its name is lowercase letters,
/// digits and `-`.
fn sandbox_exists(config: &Config, sandbox: &str) -> bool {
    match &config.sandboxes {
        Some(list) => list.iter().any(|s| s == sandbox),
        None => {
            !sandbox.is_empty()
                && sandbox
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
    }
}

/// `GET /_emulator/stats`.
async fn stats_handler(State(app): State<Arc<App>>) -> Response {
    let connections = app.read_store().total();
    error::json(
        StatusCode::OK,
        &app.stats.snapshot(connections, app.tokens.len()),
    )
}

/// `POST /_emulator/connections`: stores a connection as the AEP UI or another tool would
/// have made it (see the crate docs).
async fn seed(State(app): State<Arc<App>>, request: Request) -> Result<Response, ApiError> {
    let org = header_text(request.headers(), "x-gw-ims-org-id").map(str::to_owned);
    let body = flow::read_json(&app, request).await?;
    let bad = |message: String| ApiError::from(FlowError::bad_request("1402-400", message));
    let Value::Object(body) = body else {
        return Err(bad("the request body must be a JSON object".to_owned()));
    };
    const KNOWN: [&str; 8] = [
        "org",
        "sandbox",
        "name",
        "spec",
        "description",
        "state",
        "in_use",
        "connectionString",
    ];
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown field `{}`; known fields: {}",
            store::clip(unknown),
            KNOWN.join(", ")
        )));
    }
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("`{key}` must be a string"))),
        }
    };
    let org = text("org")?.or(org).ok_or_else(|| {
        bad("the organization is required: give `org` or the `x-gw-ims-org-id` header".to_owned())
    })?;
    let sandbox = text("sandbox")?.ok_or_else(|| bad("`sandbox` is required".to_owned()))?;
    if !sandbox_exists(&app.config, &sandbox) {
        return Err(bad(format!(
            "sandbox `{}` does not exist",
            store::clip(&sandbox)
        )));
    }
    let name = text("name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("`name` is required".to_owned()))?;
    let in_use = match body.get("in_use") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`in_use` must be true or false".to_owned())),
    };
    let connection_string = text("connectionString")?.unwrap_or_else(|| {
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        format!("DefaultEndpointsProtocol=https;AccountName=made-elsewhere;AccountKey={key}")
    });
    let mut params = Map::new();
    params.insert(
        "connectionString".to_owned(),
        Value::String(connection_string),
    );
    let new = NewConn {
        fields: Fields {
            name,
            description: text("description")?,
            spec_version: ATS_CONNECTION_SPEC_VERSION.to_owned(),
            auth_spec_name: ATS_AUTH_SPEC_NAME.to_owned(),
            auth_params: params,
        },
        spec_id: text("spec")?.unwrap_or_else(|| ATS_CONNECTION_SPEC_ID.to_owned()),
        state: text("state")?.unwrap_or_else(|| "enabled".to_owned()),
        in_use,
        listed_from: Instant::now(),
    };
    let actor = Actor {
        client: Arc::from(SEED_CLIENT),
        user: Arc::from(format!("{SEED_CLIENT}@AdobeID")),
    };
    let (id, etag) = app.write_store().create(&org, &sandbox, new, &actor);
    Ok(error::json(
        StatusCode::CREATED,
        &json!({ "id": id, "etag": etag }),
    ))
}

/// The client id that connections stored through `/_emulator/connections` show as their
/// creator (the AEP UI's).
const SEED_CLIENT: &str = "exc_app";
