//! A local imitation of Adobe's Flow Service connections API and IMS token endpoint, with fault
//! injection, plus an Azure Table service imitation that checks storage account keys.
//!
//! [`start`] binds a socket and serves, on one port:
//!
//! - `POST /ims/token/v3`: form fields `grant_type=client_credentials`, `client_id`,
//!   `client_secret`, `scope`; answers `{"access_token","token_type":"bearer","expires_in"}`.
//!   Tokens are opaque random strings that expire after [`Config::token_ttl`].
//! - under `/data/foundation/flowservice`: `POST /connections`, `GET /connections`,
//!   `GET|PATCH|DELETE /connections/{id}`, `GET /connections/{id}/test`, each also with a
//!   trailing slash.
//! - `GET /{account}/Tables` (query ignored, trailing slash allowed): the Azure Table service,
//!   path-style like Azurite (below).
//! - `GET /_emulator/stats`: request counts (below); `POST /_emulator/connections`: store a
//!   connection as another tool would have (below).
//!
//! # Fidelity choices
//!
//! Error codes follow the error catalog of Adobe's Flow Service documentation (its "Flow
//! Service error messages" page). Where the catalog names no code, the emulator uses its
//! own (marked *own*), in the Flow Service shape:
//!
//! | code | when |
//! |---|---|
//! | `1101-404` | no connection with that id in this organization and sandbox, or a path under the Flow Service base that names no resource |
//! | `1102-500` | above [`Config::rate_limit`] with [`Config::overload_500`]: "reaching the API limit", no `Retry-After` |
//! | `1103-503` | [`Config::fail_rate`] |
//! | `1401-400` | `limit` and `count=true` together |
//! | `1402-400` | *own*: malformed body (not JSON, not UTF-8, wrong JSON type, unsupported patch op, empty patch array); also a body without `Content-Type: application/json`, whose body has `title` `BadRequestError` and the message only in `detail` ("A valid content-type must be specified") |
//! | `1403-400` | PATCH without `If-Match` |
//! | `1404-412` | `If-Match` is not the connection's etag: read it again |
//! | `1405-400` | empty request body |
//! | `1406-400` | *own*: a required field is missing or empty (`name`, `auth.specName`, `auth.params`, `connectionSpec.id`) |
//! | `1408-400` | *own*: the connection string has no `AccountName` or `AccountKey`, or is not `Key=Value;...` |
//! | `1412-413` | *own*: body over [`MAX_BODY_BYTES`] |
//! | `1413-400` | unknown connection spec id or version (only ATS `1.0` can be created) |
//! | `1414-400` | a patch of `/connectionSpec` |
//! | `1415-400` | `auth.specName` is not `Connection String Based Authentication` |
//! | `1416-400` | PATCH or DELETE of a connection in a state other than `enabled`, `disabled`, `initializing` (and `delete-finalizing`, below) |
//! | `1418-400` | DELETE of a connection used by dataflows |
//! | `1445-400` | any PATCH when [`Config::patch_enabled`] is false: "PATCH Connection Feature not enabled" |
//! | `1449-400` | `property` filter on a field that cannot be filtered |
//! | `1450-400` | `property` filter with no or an unknown operator |
//! | `1451-400` | unknown query parameter on `GET /connections` (known: `property`, `orderby`, `count`, `limit`, `continuationToken`) |
//! | `1452-400` | bad query value: `limit` (0, over 1000, not a number), `count`, `orderby`, `continuationToken`, a filter's number |
//! | `1455-400` | patch path that does not exist, `remove` of `/name` or `/auth/params`, `replace` or `remove` of a description the connection does not have |
//! | `1457-400`, `1458-400` | PATCH, DELETE of a connection in state `delete-finalizing` |
//! | `1105-405` | *own*: method not allowed on a known path (with `Allow`) |
//! | `2100-404`, `2105-400` | sandbox not found; `x-sandbox-name` missing |
//!
//! Gateway errors (`{"error_code","message"}`): `401013` for a missing, malformed, unknown,
//! expired or evicted bearer token, `403000` missing `x-api-key`, `403003` an `x-api-key` other
//! than the configured client id, `400003` missing `x-gw-ims-org-id`, `403025` "Profile is not
//! valid" (with [`Config::required_scopes`], a token whose scopes lack
//! `additional_info.projectedProductContext`), `429050` rate limited (with `Retry-After` in
//! seconds), `404010` a path outside the emulated APIs, `414000` (*own*) a request target
//! (path and query) longer than [`MAX_URI_BYTES`], before any other check, `408000` a request body that did not
//! arrive within [`Config::body_timeout`] (the connection is then closed). IMS errors
//! (`{"error","error_description"}`): `invalid_request` (400, a missing field),
//! `unsupported_grant_type` (400), `invalid_client` (401, wrong pair when
//! [`Config::client_credentials`] is set), `invalid_scope` (400, a scope of
//! [`Config::required_scopes`] not asked for; `scope` is split on commas and spaces). Every
//! answer carries an `x-request-id` header; Flow errors with a `report` repeat it in
//! `report.request-id`.
//!
//! Order of checks for Flow Service calls, one middleware each: `Authorization`, `x-api-key`,
//! org, profile; rate limit, fail rate; sandbox header, sandbox existence; then the route
//! (unknown path `1101-404`, method `1105-405`) and the call itself, which reads its body last
//! (`Content-Type`, size, JSON). PATCH checks `1445`, then `If-Match`, then the body, then the
//! connection (`1101`), its state (`1457`, `1416`), its etag (`1404`) and the operations.
//! Without [`Config::sandboxes`], a sandbox exists when its name is lowercase letters, digits
//! and `-`.
//!
//! PATCH follows RFC 6902 on `/name`, `/description` and `/auth/params` (op names in any
//! case): `add` creates or overwrites, `replace` and `remove` need the field to exist. A
//! connection created without a description has none: reads show no `description` field.
//! Operations apply all or none.
//!
//! States: a connection's `state` is `enabled` unless stored otherwise through
//! `/_emulator/connections`; `connectionSpec.id` and `state` filters and sorting use the
//! stored values.
//!
//! Listing lag: with [`Config::list_lag`], a connection created through the API shows in
//! listings (and counts) only that long after it was made; reads, patches and deletes by id
//! find it at once.
//!
//! Secrets: a stored connection keeps its real `auth.params` (to answer `/test`), but every
//! read masks them. In `connectionString`, the segments `DefaultEndpointsProtocol`,
//! `AccountName`, `EndpointSuffix` and `TableEndpoint` keep their values and every other
//! segment's value (`AccountKey`, `SharedAccessSignature`, ...) becomes `***`; any other
//! parameter, whatever its type (string, number, object, array, ...), becomes `***`
//! entirely, so nothing nested under it comes back either. Nothing sent as a secret is logged.
//!
//! `/test` answers `{"result": true}` when the stored connection string has a non-empty
//! `AccountName`, an `AccountKey` that is non-empty valid standard base64, and no
//! `DefaultEndpointsProtocol` other than `http` or `https`; otherwise `{"result": false}`.
//! (Writes already reject strings without `AccountName` or `AccountKey`, so in practice a
//! key that is not base64 is what makes a test fail.)
//!
//! Listing walks connections by `(sort key, insertion sequence)`; the continuation token
//! carries the last position returned, so an item that exists for the whole listing is
//! returned exactly once whatever is created or deleted meanwhile. `_links.next.href` is
//! `/connections?continuationToken=..&limit=..` plus the request's `orderby` and `property`
//! parameters. Scalar parameters given twice (aepp repeats them on every page) take the last.
//!
//! # Hostile clients
//!
//! A client has [`Config::header_read_timeout`] (default 10 s) to send a request's head, and
//! as long to start its next request on an idle keep-alive connection; then the connection
//! is closed (a slowloris client sending a byte a second is cut off). A request body must
//! arrive whole within [`Config::body_timeout`] (default 30 s): then 408 `408000` and the
//! connection is closed. Bodies over [`MAX_BODY_BYTES`] are refused as they stream. Issued
//! tokens are kept until they expire (expired ones are evicted as new ones are issued) and
//! at most [`Config::max_tokens`] (default 10,000) at once: over it, the oldest is
//! forgotten.
//!
//! # `POST /_emulator/connections`
//!
//! Stores a connection as the AEP UI or another tool would have made it, for tests of
//! adoption, conflicts and refusals. Body (`Content-Type: application/json`):
//!
//! ```json
//! {"sandbox": "prod", "name": "made-in-the-ui", "spec": "…", "description": "…",
//!  "state": "enabled", "in_use": false, "org": "…@AdobeOrg", "connectionString": "…"}
//! ```
//!
//! `sandbox` and `name` are required. `org` defaults to the `x-gw-ims-org-id` header (one of
//! the two is required); `spec` to the ATS spec id (any string is stored); no description
//! unless given; `state` defaults to `enabled` (any string is stored); `in_use: true`
//! makes DELETE answer `1418-400`; `connectionString` defaults to one for the account
//! `made-elsewhere` with a random key. Its creator is the client `exc_app`, and it shows in
//! listings at once. Answers 201 `{"id","etag"}`; `1402-400` for an unknown field, a wrong
//! type, a missing `sandbox`, `name` or organization, or a sandbox that does not exist;
//! `1105-405` for another method. No token is needed.
//!
//! # Azure Table service
//!
//! `GET /{account}/Tables` proves an account key of [`Config::table_accounts`] with Azure's
//! "Shared Key Lite": the request carries `x-ms-date` (an RFC 1123 date) and
//! `Authorization: SharedKeyLite {account}:{signature}`, the signature being
//! [`atsprov_model::sharedkey::authorization`] over the request's URL path as sent
//! (`/{account}/Tables`, so the canonical resource is `/{account}/{account}/Tables`, as Azurite
//! has it). No Adobe header or token is needed. Checks, in order:
//!
//! | answer | when |
//! |---|---|
//! | 404 `ResourceNotFound` | the account is not in [`Config::table_accounts`] (real Azure would fail to resolve `{account}.table.core.windows.net`; a 404 lets a test see the same "no such account" without DNS) |
//! | 405 `UnsupportedHttpVerb` | a method other than `GET` (with `Allow: GET`) |
//! | 403 `AuthenticationFailed` | `x-ms-date` missing or not an HTTP date; `Authorization` missing or not `SharedKeyLite name:signature`; `x-ms-date` more than 15 minutes from the emulator's clock; or the whole `Authorization` value differs from the one the stored key makes |
//! | 200 `{"value":[]}` | otherwise; no tables are ever stored |
//!
//! Errors have Azure's JSON shape,
//! `{"odata.error":{"code":"...","message":{"lang":"en-US","value":"..."}}}`, and the
//! `x-ms-error-code` header; every answer has `Content-Type: application/json;odata=nometadata`,
//! `x-ms-request-id` (the same id as `x-request-id`) and `x-ms-version: 2019-02-02`. The
//! message adds a `Detail:` line saying which check failed; no answer repeats a header's value
//! or the key. The request body is never read.
//!
//! # Faults
//!
//! [`Config::latency`] is added to every answer except those under `/_emulator`.
//! [`Config::rate_limit`] is a token bucket per organization (burst and refill of `N` per
//! second) over Flow Service calls; above it, 429 `429050` with `Retry-After`, or with
//! [`Config::overload_500`] `1102-500` without it. [`Config::fail_rate`] answers that fraction of Flow Service calls 503 `1103-503`.
//! [`Config::ambiguous_rate`] makes that fraction of successful creates, patches and deletes
//! carry out the write and then close the connection before any byte of the answer is sent.
//! The token endpoint and the Table service are subject to latency only. With [`Config::seed`], the dice are
//! repeatable for a given order of requests.
//!
//! # `GET /_emulator/stats`
//!
//! Counts every request except those under `/_emulator`:
//!
//! ```json
//! {
//!   "requests": 42,
//!   "by_method": {"GET": 30, "POST": 12},
//!   "by_route": {"token": 1, "list": 3, "get": 20, "create": 11, "patch": 0, "delete": 0, "test": 7, "table": 0, "other": 0},
//!   "by_status": {"200": 30, "201": 10, "429": 1, "dropped": 1},
//!   "by_route_status": {"create": {"201": 10, "dropped": 1}, "get": {"200": 20}},
//!   "writes": 11,
//!   "rate_limited": 1,
//!   "injected_failures": 0,
//!   "overloaded": 0,
//!   "dropped": 1,
//!   "lists_by_id": 0,
//!   "tokens_issued": 1,
//!   "tokens_live": 1,
//!   "connections": 11
//! }
//! ```
//!
//! `by_route` always lists the nine route kinds; `table` counts every request to
//! `/{account}/Tables`, whatever its method, account or answer. `writes` counts creates, patches and
//! deletes carried out (answered or dropped); `rate_limited` the 429s; `injected_failures`
//! the 503s of the fail rate; `overloaded` the `1102-500`s of [`Config::overload_500`];
//! `dropped` the answers withheld by the ambiguous rate (their status is `dropped`);
//! `lists_by_id` the listing pages and counts answered for a filter by id (`property=id==a,b,…`);
//! `tokens_live` the tokens stored now; `connections` the connections stored now, over all
//! sandboxes (those of `/_emulator/connections` included).

mod app;
mod error;
mod faults;
mod flow;
mod listing;
mod mask;
mod patch;
mod server;
mod stats;
mod store;
mod table;
mod token;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atsprov_model::Secret;
use base64::Engine as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest Flow Service request target (path and query) accepted, as a
/// gateway limits its request line; longer ones get 414 `414000`.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// How the emulator behaves.
#[derive(Clone)]
pub struct Config {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Sandboxes that exist; `None` means any name of lowercase letters, digits and `-`.
    pub sandboxes: Option<Vec<String>>,
    /// Added to every answer except `/_emulator/stats`.
    pub latency: Duration,
    /// Flow Service calls per second per organization; above it, 429 with `Retry-After`.
    pub rate_limit: Option<u32>,
    /// Fraction (0 to 1) of Flow Service calls answered 503 `1103-503`.
    pub fail_rate: f64,
    /// Fraction (0 to 1) of successful writes after which the connection is dropped unanswered.
    pub ambiguous_rate: f64,
    /// The only client id and secret that get tokens; `None` accepts any pair.
    pub client_credentials: Option<(String, String)>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Default page size of `GET /connections` (1 to 1000).
    pub page_size: u32,
    /// Seeds the fault dice.
    pub seed: Option<u64>,
    /// Storage accounts of the Table service imitation: name (ASCII letters and digits) and
    /// base64 account key. `Debug` shows the names only.
    pub table_accounts: Vec<(String, Secret)>,
    /// How long after its creation a connection starts to show in listings (reads by id
    /// find it at once).
    pub list_lag: Duration,
    /// `false` answers every PATCH `1445-400` "PATCH Connection Feature not enabled".
    pub patch_enabled: bool,
    /// Scopes a token request must all ask for (`invalid_scope` otherwise); when set, a
    /// token without `additional_info.projectedProductContext` gets gateway `403025`.
    pub required_scopes: Option<Vec<String>>,
    /// Above [`Config::rate_limit`], answer `1102-500` with no `Retry-After` instead of 429.
    pub overload_500: bool,
    /// How long a client may take to send a request's head, and to send the first byte of
    /// its next request on an idle connection; then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a whole request body; then 408 and the
    /// connection is closed.
    pub body_timeout: Duration,
    /// Live tokens kept at most; over it, the oldest is forgotten (its calls get `401013`).
    pub max_tokens: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            sandboxes: None,
            latency: Duration::ZERO,
            rate_limit: None,
            fail_rate: 0.0,
            ambiguous_rate: 0.0,
            client_credentials: None,
            token_ttl: Duration::from_secs(86399),
            page_size: 100,
            seed: None,
            table_accounts: Vec::new(),
            list_lag: Duration::ZERO,
            patch_enabled: true,
            required_scopes: None,
            overload_500: false,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_tokens: 10_000,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("sandboxes", &self.sandboxes)
            .field("latency", &self.latency)
            .field("rate_limit", &self.rate_limit)
            .field("fail_rate", &self.fail_rate)
            .field("ambiguous_rate", &self.ambiguous_rate)
            .field(
                "client_credentials",
                &self.client_credentials.as_ref().map(|(id, _)| (id, "***")),
            )
            .field("token_ttl", &self.token_ttl)
            .field("page_size", &self.page_size)
            .field("seed", &self.seed)
            .field(
                "table_accounts",
                &self
                    .table_accounts
                    .iter()
                    .map(|(name, _)| (name, "***"))
                    .collect::<Vec<_>>(),
            )
            .field("list_lag", &self.list_lag)
            .field("patch_enabled", &self.patch_enabled)
            .field("required_scopes", &self.required_scopes)
            .field("overload_500", &self.overload_500)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// A setting of [`Config`] out of range.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// `fail_rate` or `ambiguous_rate` is not within 0..=1.
    #[error("`{name}` must be between 0 and 1, got `{value}`")]
    Rate {
        /// The setting's name.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// `page_size` is 0 or over 1000.
    #[error("`page_size` must be between 1 and 1000, got `{0}`")]
    PageSize(u32),
    /// `rate_limit` is 0.
    #[error("`rate_limit` must be at least 1 request per second")]
    RateLimit,
    /// A name in `sandboxes` is not one AEP allows: lowercase letters, digits and `-`.
    #[error("sandbox names are lowercase letters, digits and `-`, got `{0}`")]
    SandboxName(String),
    /// A name in `table_accounts` is empty or not only ASCII letters and digits.
    #[error("Table account names must be ASCII letters and digits, got `{0}`")]
    TableAccountName(String),
    /// A name appears twice in `table_accounts`.
    #[error("Table account `{0}` is given twice")]
    DuplicateTableAccount(String),
    /// A key in `table_accounts` is not valid standard base64 (the key itself is not shown).
    #[error("the key of Table account `{0}` is not valid base64")]
    TableAccountKey(String),
    /// `required_scopes` is an empty list or holds an empty scope.
    #[error("required scopes must be a non-empty list of non-empty scopes")]
    RequiredScopes,
    /// `header_read_timeout` or `body_timeout` is zero.
    #[error("`{0}` must be more than zero")]
    Timeout(&'static str),
    /// `max_tokens` is zero.
    #[error("`max_tokens` must be at least 1")]
    MaxTokens,
}

impl Config {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("fail_rate", self.fail_rate),
            ("ambiguous_rate", self.ambiguous_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Rate { name, value });
            }
        }
        if self.page_size == 0 || self.page_size > atsprov_model::wire::MAX_PAGE_SIZE {
            return Err(ConfigError::PageSize(self.page_size));
        }
        if self.rate_limit == Some(0) {
            return Err(ConfigError::RateLimit);
        }
        if self
            .required_scopes
            .as_ref()
            .is_some_and(|list| list.is_empty() || list.iter().any(|s| s.trim().is_empty()))
        {
            return Err(ConfigError::RequiredScopes);
        }
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Timeout(name));
            }
        }
        if self.max_tokens == 0 {
            return Err(ConfigError::MaxTokens);
        }
        let sandbox_name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if let Some(bad) = self
            .sandboxes
            .iter()
            .flatten()
            .find(|s| !sandbox_name_ok(s))
        {
            return Err(ConfigError::SandboxName(bad.chars().take(64).collect()));
        }
        for (i, (name, key)) in self.table_accounts.iter().enumerate() {
            if !table::valid_account_name(name) {
                return Err(ConfigError::TableAccountName(
                    name.chars().take(64).collect(),
                ));
            }
            if self.table_accounts[..i]
                .iter()
                .any(|(other, _)| other == name)
            {
                return Err(ConfigError::DuplicateTableAccount(name.clone()));
            }
            // Decoded the way `sharedkey::authorization` decodes it.
            let decodes = !key.is_blank()
                && base64::engine::general_purpose::STANDARD
                    .decode(key.expose().trim())
                    .is_ok();
            if !decodes {
                return Err(ConfigError::TableAccountKey(name.clone()));
            }
        }
        Ok(())
    }
}

/// A serving emulator; dropping it without [`RunningEmulator::shutdown`] leaves it serving
/// until the runtime ends.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Validates `config`, binds its address and serves in a spawned task.
///
/// Errors: `InvalidInput` for a [`ConfigError`], or the bind error (e.g. address in use).
pub async fn start(config: Config) -> std::io::Result<RunningEmulator> {
    config
        .validate()
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let header_read_timeout = config.header_read_timeout;
    let router = app::router(Arc::new(app::App::new(config)));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(
        listener,
        router,
        header_read_timeout,
        stopped,
    ));
    tracing::info!(%addr, "emulator listening");
    Ok(RunningEmulator { addr, stop, task })
}

impl RunningEmulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/data/foundation/flowservice`.
    pub fn flow_url(&self) -> String {
        format!("http://{}/data/foundation/flowservice", self.addr)
    }

    /// `http://ADDR/ims/token/v3`.
    pub fn token_url(&self) -> String {
        format!("http://{}/ims/token/v3", self.addr)
    }

    /// `http://ADDR/{account}`: the path-style Table endpoint of a storage account.
    pub fn table_url(&self, account: &str) -> String {
        format!("http://{}/{account}", self.addr)
    }

    /// `http://ADDR/_emulator/stats`.
    pub fn stats_url(&self) -> String {
        format!("http://{}/_emulator/stats", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "emulator task failed");
        }
    }
}
