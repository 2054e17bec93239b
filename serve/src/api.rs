//! What the HTTP endpoints share: the state they run on, the answer type that names the model
//! for the access log, the fallback, `/metrics`, the metrics middleware and the JSON form of
//! errors raised outside the handlers. The endpoints themselves are in `v1` (task endpoints
//! taking an image), `oip` (the Open Inference Protocol under `/v2`), `openapi` and `page`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::error::ApiError;
use crate::registry::{Model, Registry};
use crate::telemetry::ServedBy;

pub type AppState = Arc<Registry>;

/// A model's answer, with the model's name for the access log.
pub type Served<T> = (Extension<ServedBy>, Json<T>);

pub fn served<T>(model: &Model, answer: T) -> Served<T> {
    (Extension(ServedBy(model.name.clone())), Json(answer))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics, per model as Triton counts",
    responses((status = 200, description = "the Prometheus text format", content_type = "text/plain")),
    tag = "operations"
)]
pub async fn metrics(State(registry): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        registry.metrics.render(),
    )
}

/// Records every routed request's status and latency.
pub async fn record(
    State(registry): State<AppState>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    registry
        .metrics
        .request(&endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// Gives error answers produced outside the handlers (body limit, timeout, overload, axum's
/// rejections of a malformed query) the same `{"error": ...}` form as the handlers' own. A
/// rejection's own text ("Failed to deserialize query string: …") is kept as the reason.
pub async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if status.as_u16() < 400 || content_type.starts_with(b"application/json") {
        return response;
    }
    let text = if content_type.starts_with(b"text/plain") {
        axum::body::to_bytes(response.into_body(), 4096)
            .await
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .filter(|text| !text.is_empty())
    } else {
        None
    };
    let reason = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts (--max-body-bytes)".to_string()
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than the server allows (--timeout-s)".to_string()
        }
        other => text.unwrap_or_else(|| {
            other
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string()
        }),
    };
    axum::response::IntoResponse::into_response(ApiError::new(status, reason))
}
