//! The HTTP routes and the layers around them: request ids, the access log, JSON errors, access
//! control, the time, body and concurrency limits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower::util::option_layer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::cli::Cli;
use crate::registry::Registry;
use crate::{access, api, oip, openapi, page, telemetry, v1};

/// The access-control layers `router` adds, checked before any model loads.
pub struct Access {
    pub api_key: Option<access::ApiKey>,
    origins: Vec<HeaderValue>,
    pub rate: Option<access::RateLimit>,
}

pub fn access_control(cli: &Cli) -> anyhow::Result<Access> {
    if cli.api_key.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("--api-key is empty: give the key clients must send");
    }
    let api_key = cli.api_key.as_deref().map(access::ApiKey::new);
    let origins = cli
        .cors_origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin.trim())
                .with_context(|| format!("--cors-origin {origin:?} is not a header value"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rate = cli.rate_limit.map(|per_second| {
        let limit = access::RateLimit::new(per_second, cli.rate_burst.unwrap_or(per_second));
        let idle = limit.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                idle.forget_idle();
            }
        });
        limit
    });
    Ok(Access {
        api_key,
        origins,
        rate,
    })
}

pub fn router(registry: Arc<Registry>, cli: &Cli, access: Access) -> Router {
    let Access {
        api_key,
        origins,
        rate,
    } = access;

    let overload = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": "the server is at capacity; retry later"})),
            )
        }))
        .load_shed()
        .concurrency_limit(cli.concurrency.max(1));
    Router::new()
        .merge(v1::routes())
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::model_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::model_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer),
        )
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .merge(page::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&registry),
            api::record,
        ))
        .fallback(api::not_found)
        .with_state(registry)
        .layer(overload)
        // axum's own limit does not cover every body extractor; tower-http's covers every
        // request, whatever reads its body.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(cli.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cli.timeout_s.max(1)),
        ))
        // Outside the limits above: a refused client costs no body read and no queue place.
        .layer(option_layer(api_key.map(|key| {
            axum::middleware::from_fn_with_state(key, access::require_key)
        })))
        .layer(option_layer(rate.map(|limit| {
            axum::middleware::from_fn_with_state(limit, access::limit_rate)
        })))
        // Preflight requests carry no key, and refusals carry the CORS headers.
        .layer(option_layer(
            (!origins.is_empty()).then(|| access::cors(&origins)),
        ))
        .layer(axum::middleware::map_response(api::json_errors))
        .layer(axum::middleware::from_fn(telemetry::access_log))
        // Outermost: the request id exists before anything logs, and every answer carries it.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
