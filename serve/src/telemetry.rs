//! What the server tells its operator: log lines through `tracing` on stderr, in a human format
//! (the default) or as one JSON object per line (`--log-format json`), filtered by `RUST_LOG`
//! (default `info`); one access-log line per request, with its `x-request-id`; and, with
//! `--otlp-endpoint`, one OpenTelemetry span per request exported over OTLP/gRPC.
//!
//! Every request carries an `x-request-id`: the client's own, or a new UUID (tower-http's
//! request-id layers, set up in `router.rs`), which the response returns and the access line
//! names. A request's span continues the trace of its W3C `traceparent` header when it has one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T03:00:00.123Z  INFO request request_id=… status=200 …`
    Human,
    /// `{"timestamp": …, "level": "INFO", "message": "request", "request_id": …}`
    Json,
}

/// The span exporter, kept so that its last spans are sent before the process exits.
pub struct Tracing(Option<SdkTracerProvider>);

impl Tracing {
    /// Sends the spans not exported yet and stops the exporter. Call it before the async
    /// runtime the exporter was built on goes away.
    pub fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last spans could not be exported: {e}");
        }
    }
}

/// Installs the process's log subscriber and, given an OTLP endpoint (`http://collector:4317`),
/// the span exporter beside it. Must run inside the Tokio runtime that serves, which the
/// exporter's gRPC client uses.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<Tracing, opentelemetry_otlp::ExporterBuildError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otlp_endpoint
        .map(|endpoint| {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, name the service.
            let mut resource = opentelemetry_sdk::Resource::builder();
            if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
                resource = resource.with_service_name("exemplar-serve");
            }
            Ok::<_, opentelemetry_otlp::ExporterBuildError>(
                SdkTracerProvider::builder()
                    .with_resource(resource.build())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        })
        .transpose()?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("exemplar-serve"))
    });
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a container's log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    match format {
        LogFormat::Human => registry.with(lines).init(),
        LogFormat::Json => registry.with(lines.json().flatten_event(true)).init(),
    }
    Ok(Tracing(provider))
}

/// A server span for one call: `name` (`POST /v2/models/{name}/infer`), continuing the trace
/// of the request's `traceparent` header, if any.
pub fn server_span(name: &str, headers: &axum::http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        http.response.status_code = tracing::field::Empty,
        model = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // Fails only when no OpenTelemetry layer is installed, where there is no trace to join.
    let _ = span.set_parent(parent);
    span
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
    let span = server_span(&format!("{method} {route}"), request.headers());
    span.record("request_id", request_id.as_str());
    let response = next.run(request).instrument(span.clone()).await;
    let model = response.extensions().get::<ServedBy>().map(|m| m.0.clone());
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if let Some(model) = &model {
        span.record("model", model.as_str());
    }
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
