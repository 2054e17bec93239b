//! What the server tells its operator: log lines through `tracing` on stderr, in a human format
//! (the default) or as one JSON object per line (`--log-format json`), filtered by `RUST_LOG`
//! (default `info`); and one access-log line per request, with its `x-request-id`.
//!
//! Every request carries an `x-request-id`: the client's own, or a new UUID (tower-http's
//! request-id layers, set up in `main.rs`), which the response returns and the access line names.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T03:00:00.123Z  INFO request request_id=… status=200 …`
    Human,
    /// `{"timestamp": …, "level": "INFO", "message": "request", "request_id": …}`
    Json,
}

/// Installs the process's log subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a container's log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The model that answered a request, which handlers put in their response's extensions for
/// the access log.
#[derive(Debug, Clone)]
pub struct ServedBy(pub String);

/// Writes the access-log line of every request: method, path, route, model, status, duration
/// and request id. It wraps the body limit, overload and timeout layers, so their refusals are
/// logged too.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let request_id = header_text(request.headers(), "x-request-id");
    let response = next.run(request).await;
    let model = response.extensions().get::<ServedBy>().map(|m| m.0.clone());
    let status = response.status().as_u16();
    // Microseconds are enough.
    let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(
        request_id,
        %method,
        path,
        route,
        model,
        status,
        duration_ms,
        "request"
    );
    response
}

fn header_text(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
