//! The Flow Service connection calls, one handler per endpoint, and how request bodies are
//! read (size cap, whole-body timeout, `Content-Type`, JSON).

use std::sync::Arc;
use std::time::Instant;

use atsprov_model::wire::ATS_CONNECTION_SPEC_ID;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::{App, Caller, FLOW_BASE};
use crate::error::{self, ApiError, FlowError, GatewayError};
use crate::listing::ListQuery;
use crate::mask::ConnView;
use crate::stats::{self, Marks};
use crate::store::{self, NewConn};
use crate::{MAX_BODY_BYTES, validate};

/// The whole body, or: 413 over [`MAX_BODY_BYTES`], 408 (and the connection closed) when
/// it does not arrive within [`crate::Config::body_timeout`], 400 when it cannot be read.
pub(crate) async fn read_body(app: &App, request: Request) -> Result<Bytes, ApiError> {
    let too_large = || {
        FlowError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "1412-413",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large().into());
    }
    let read = async {
        let mut stream = request.into_body().into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|_| {
                ApiError::from(FlowError::bad_request(
                    "1402-400",
                    "the request body could not be read",
                ))
            })?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large().into());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    };
    tokio::time::timeout(app.config.body_timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(GatewayError {
                close: true,
                ..GatewayError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "408000",
                    "Request timeout: the body did not arrive in time",
                )
            }
            .into())
        })
}

/// A JSON body: `Content-Type: application/json` required (the answer's message is only in
/// `detail`, as Adobe's is), then the body read and parsed; an empty body is `1405-400`.
pub(crate) async fn read_json(app: &App, request: Request) -> Result<Value, ApiError> {
    let json_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(FlowError::detail_only(
            StatusCode::BAD_REQUEST,
            "1402-400",
            "BadRequestError",
            "A valid content-type must be specified",
        )
        .into());
    }
    let bytes = read_body(app, request).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FlowError::bad_request("1405-400", "the request body is empty").into());
    }
    serde_json::from_slice(&bytes).map_err(|err| {
        FlowError::bad_request(
            "1402-400",
            format!(
                "the request body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
        )
        .into()
    })
}

/// The connection id of the path; one that cannot be decoded names no connection.
fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, FlowError> {
    path.map(|Path(id)| id)
        .map_err(|_| store::not_found("(undecodable id)"))
}

/// `{"items": [...], "_links": {...}}`, serialized without an intermediate `Value`.
#[derive(serde::Serialize)]
struct Items<T> {
    items: T,
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    links: Option<Value>,
}

/// A successful write, marked for the ambiguous fault and the stats.
fn written(mut response: Response) -> Response {
    stats::mark(&mut response, |m: &mut Marks| m.wrote = true);
    response
}

/// `GET /connections`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query.as_deref().unwrap_or(""), app.config.page_size)?;
    let now = Instant::now();
    let store = app.read_store();
    let sandbox = store.sandbox(&caller.org, &caller.sandbox);
    if query.count {
        let count = query.count_in(sandbox, now);
        let mut response = error::json(StatusCode::OK, &json!({ "count": count }));
        let by_id = query.by_id();
        stats::mark(&mut response, |m: &mut Marks| m.listed_by_id = by_id);
        return Ok(response);
    }
    let (page, more) = query.page(sandbox, now);
    let sandbox_id = sandbox.map(|s| s.id.clone());
    drop(store);
    let by_id = query.by_id();
    let sandbox_id = sandbox_id.as_deref().unwrap_or("");
    let items: Vec<ConnView<'_>> = page
        .iter()
        .map(|c| ConnView::new(c, &caller.org, &caller.sandbox, sandbox_id))
        .collect();
    let links = match (more, page.last()) {
        (true, Some(last)) => Some(json!({ "next": { "href": query.next_href(last) } })),
        _ => None,
    };
    let mut response = error::json(StatusCode::OK, &Items { items, links });
    stats::mark(&mut response, |m: &mut Marks| m.listed_by_id = by_id);
    Ok(response)
}

/// `GET /connections/{id}`: found at once, whatever the listing lag.
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    let (conn, sandbox_id) = app.read_store().get(&caller.org, &caller.sandbox, &id)?;
    let view = ConnView::new(&conn, &caller.org, &caller.sandbox, &sandbox_id);
    Ok(error::json(
        StatusCode::OK,
        &Items {
            items: [view],
            links: None,
        },
    ))
}

/// `POST /connections`.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let fields = validate::check_new(&read_json(&app, request).await?)?;
    let new = NewConn {
        fields,
        spec_id: ATS_CONNECTION_SPEC_ID.to_owned(),
        state: "enabled".to_owned(),
        in_use: false,
        listed_from: Instant::now() + app.config.list_lag,
    };
    let (id, etag) = app
        .write_store()
        .create(&caller.org, &caller.sandbox, new, &caller.actor);
    let mut response = error::json(StatusCode::CREATED, &json!({ "id": id, "etag": etag }));
    if let Ok(location) = HeaderValue::from_str(&format!("{FLOW_BASE}/connections/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(written(response))
}

/// `PATCH /connections/{id}`: `1445` when PATCH is off, `1403` without `If-Match`, then
/// the body, the connection, its state and its etag.
pub(crate) async fn patch(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    if !app.config.patch_enabled {
        return Err(
            FlowError::bad_request("1445-400", "PATCH Connection Feature not enabled").into(),
        );
    }
    let Some(if_match) = crate::app::header_text(&headers, "if-match") else {
        return Err(crate::patch::if_match_missing().into());
    };
    let ops = crate::patch::parse(&read_json(&app, request).await?)?;
    let id = id_of(path)?;
    let etag = app.write_store().update(
        &caller.org,
        &caller.sandbox,
        &id,
        if_match,
        |conn| crate::patch::apply(conn, ops),
        &caller.actor,
    )?;
    Ok(written(error::json(
        StatusCode::OK,
        &json!({ "id": id, "etag": etag }),
    )))
}

/// `DELETE /connections/{id}`.
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    app.write_store()
        .delete(&caller.org, &caller.sandbox, &id)?;
    Ok(written(error::no_content()))
}

/// `GET /connections/{id}/test`.
pub(crate) async fn test(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    let (conn, _) = app.read_store().get(&caller.org, &caller.sandbox, &id)?;
    let works = validate::connection_works(&conn);
    Ok(error::json(StatusCode::OK, &json!({ "result": works })))
}

/// Any path under the Flow Service base that names no resource.
pub(crate) async fn unknown() -> FlowError {
    FlowError::new(
        StatusCode::NOT_FOUND,
        "1101-404",
        "no such resource in the Flow Service API",
    )
}
