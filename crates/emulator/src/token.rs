//! The IMS token endpoint (`POST /ims/token/v3`) and the bounded store of the tokens it issued.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::app::App;
use crate::error::{self, ApiError, ImsError};
use crate::flow::read_body;

/// The scope that entitles a token to Platform APIs; without it, gateway `403025`
/// (checked when [`crate::Config::required_scopes`] is set).
pub(crate) const PROFILE_SCOPE: &str = "additional_info.projectedProductContext";

/// What a live token stands for.
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) client: Arc<str>,
    pub(crate) user: Arc<str>,
    /// The token's scopes include [`PROFILE_SCOPE`].
    pub(crate) profile: bool,
}

struct Entry {
    grant: Grant,
    expires: Instant,
}

/// Issued tokens: expired ones are evicted, and at most `cap` live ones are kept (the
/// oldest goes first). Every token lives as long, so issue order is expiry order.
pub(crate) struct Tokens {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, Entry>,
    /// Tokens in issue order, with their expiry; may name tokens already removed.
    order: VecDeque<(Instant, String)>,
}

impl Tokens {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Stores a token that expires at `expires`, evicting expired tokens and, over the
    /// cap, the oldest.
    pub(crate) fn insert(&self, token: String, grant: Grant, now: Instant, expires: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, _)) = inner.order.front() {
            if *at > now && inner.by_token.len() < self.cap {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.by_token.remove(&old);
            }
        }
        inner.order.push_back((expires, token.clone()));
        inner.by_token.insert(token, Entry { grant, expires });
    }

    /// The grant of a live token; an expired token is removed.
    pub(crate) fn lookup(&self, token: &str, now: Instant) -> Option<Grant> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = inner.by_token.get(token)?;
        if entry.expires <= now {
            inner.by_token.remove(token);
            return None;
        }
        Some(entry.grant.clone())
    }

    /// Tokens stored now.
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_token
            .len()
    }
}

/// `POST /ims/token/v3`: form fields from the query and the body.
pub(crate) async fn issue(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_body(&app, request).await?;
    let mut fields: HashMap<String, String> = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .chain(url::form_urlencoded::parse(&body))
    {
        fields.insert(key.into_owned(), value.into_owned());
    }
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let invalid =
        |description: &str| ImsError::new(StatusCode::BAD_REQUEST, "invalid_request", description);
    let grant_type = field("grant_type").ok_or_else(|| invalid("missing grant_type parameter"))?;
    if grant_type != "client_credentials" {
        return Err(ImsError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type client_credentials is supported",
        )
        .into());
    }
    let client_id = field("client_id").ok_or_else(|| invalid("missing client_id parameter"))?;
    let client_secret =
        field("client_secret").ok_or_else(|| invalid("missing client_secret parameter"))?;
    if let Some((id, secret)) = &app.config.client_credentials
        && (client_id != id || client_secret != secret)
    {
        return Err(ImsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "invalid client_id or client_secret",
        )
        .into());
    }
    let scopes: Vec<&str> = field("scope")
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(required) = &app.config.required_scopes {
        let missing: Vec<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|r| !scopes.contains(r))
            .collect();
        if !missing.is_empty() {
            return Err(ImsError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!(
                    "invalid scope: this credential must ask for {}",
                    missing.join(",")
                ),
            )
            .into());
        }
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = Instant::now();
    let expires = now
        .checked_add(app.config.token_ttl)
        .unwrap_or(now + Duration::from_secs(86399 * 365));
    let grant = Grant {
        client: Arc::from(client_id),
        user: Arc::from(format!("{client_id}@AdobeID")),
        profile: scopes.contains(&PROFILE_SCOPE),
    };
    app.tokens.insert(token.clone(), grant, now, expires);
    Ok(error::json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": app.config.token_ttl.as_secs(),
        }),
    ))
}

/// Any other method on the token path.
pub(crate) async fn not_allowed() -> ImsError {
    ImsError {
        allow: Some("POST"),
        ..ImsError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "the token endpoint accepts POST only",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            client: Arc::from("c"),
            user: Arc::from("u"),
            profile: true,
        }
    }

    #[test]
    fn expired_tokens_are_evicted_on_insert() {
        let tokens = Tokens::new(100);
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        tokens.insert("a".into(), grant(), t0, t0 + hour);
        tokens.insert("b".into(), grant(), t0, t0 + hour);
        assert_eq!(tokens.len(), 2);
        // Two hours later both expired: the next insert drops them.
        let later = t0 + 2 * hour;
        tokens.insert("c".into(), grant(), later, later + hour);
        assert_eq!(tokens.len(), 1);
        assert!(tokens.lookup("a", later).is_none());
        assert!(tokens.lookup("c", later).is_some());
        // A lookup after expiry removes the token too.
        assert!(tokens.lookup("c", later + 2 * hour).is_none());
        assert_eq!(tokens.len(), 0);
    }

    #[test]
    fn live_tokens_are_capped_oldest_first() {
        let tokens = Tokens::new(3);
        let now = Instant::now();
        let end = now + Duration::from_secs(3600);
        for name in ["a", "b", "c", "d", "e"] {
            tokens.insert(name.into(), grant(), now, end);
            assert!(tokens.len() <= 3);
        }
        assert_eq!(tokens.len(), 3);
        for (name, live) in [
            ("a", false),
            ("b", false),
            ("c", true),
            ("d", true),
            ("e", true),
        ] {
            assert_eq!(tokens.lookup(name, now).is_some(), live, "{name}");
        }
    }
}
