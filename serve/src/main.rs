//! `serve`: an HTTP service for models exported by `export`, on ONNX Runtime. It does not link
//! burn, so it starts fast and its image stays small.

mod api;
mod error;
mod health;
mod metrics;
mod oip;
mod openapi;
mod page;
mod predict;
mod registry;
mod telemetry;
mod upload;
mod v1;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::registry::{DeviceChoice, Instances, Registry};
use crate::telemetry::LogFormat;
use crate::worker::BatchOptions;

/// Serve exported exemplar models over HTTP (task endpoints under /v1, Open Inference Protocol
/// health and metadata under /v2).
///
/// Every flag can also be set by its environment variable (EXEMPLAR_MODELS, EXEMPLAR_ADDR, …), as
/// containers are configured; a flag wins over its variable.
#[derive(Debug, Parser)]
#[command(name = "serve", version, args_override_self = true)]
struct Cli {
    /// Directory with one subdirectory per model (model.onnx + model.json, as `export` writes).
    #[arg(
        long,
        value_name = "DIR",
        env = "EXEMPLAR_MODELS",
        required_unless_present = "health_check"
    )]
    models: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "EXEMPLAR_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Most images one inference call takes (dynamic batching).
    #[arg(long, env = "EXEMPLAR_MAX_BATCH", default_value_t = 8)]
    max_batch: usize,
    /// How long the first image of a batch waits for others, in milliseconds.
    #[arg(long, env = "EXEMPLAR_MAX_DELAY_MS", default_value_t = 2)]
    max_delay_ms: u64,
    /// Images that may wait per model before requests are refused with 503 (as many as
    /// --concurrency by default, so that only a server past its concurrency refuses).
    #[arg(long, env = "EXEMPLAR_QUEUE", default_value_t = 256)]
    queue: usize,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EXEMPLAR_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// ONNX Runtime sessions per model, each on its own thread, taking batches from the model's
    /// one queue (Triton's instance count).
    #[arg(long, env = "EXEMPLAR_INSTANCES", default_value_t = 1)]
    instances: usize,
    /// Threads one session computes an operator with [default: the cores divided by
    /// --instances, at least 1].
    #[arg(long, env = "EXEMPLAR_INTRA_OP_THREADS", value_name = "N")]
    intra_op_threads: Option<usize>,
    /// Threads running independent operators side by side (above 1, ONNX Runtime's parallel
    /// execution mode).
    #[arg(
        long,
        env = "EXEMPLAR_INTER_OP_THREADS",
        default_value_t = 1,
        value_name = "N"
    )]
    inter_op_threads: usize,
    /// Let ONNX Runtime's threads busy-wait for work between operators: lower latency for one
    /// client at a time, at the cost of CPU that decoding and HTTP could use.
    #[arg(long, env = "EXEMPLAR_SPIN")]
    spin: bool,
    /// Requests in flight at once; more are refused with 503.
    #[arg(long, env = "EXEMPLAR_CONCURRENCY", default_value_t = 256)]
    concurrency: usize,
    /// Per-request time limit, in seconds.
    #[arg(long, env = "EXEMPLAR_TIMEOUT_S", default_value_t = 30)]
    timeout_s: u64,
    /// Where to run the models: auto (CUDA when its execution provider loads, else CPU), cpu,
    /// cuda or cuda:N.
    #[arg(long, env = "EXEMPLAR_DEVICE", default_value = "auto")]
    device: DeviceChoice,
    /// Log lines as `human` text or as one `json` object per line (RUST_LOG filters them,
    /// default `info`).
    #[arg(long, env = "EXEMPLAR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Ask the server at --addr whether it is live (GET /v2/health/live) and exit 0 if it is,
    /// 1 if not: a container health check that needs no curl in the image.
    #[arg(long)]
    health_check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.health_check {
        return match health::check(cli.addr, Duration::from_secs(cli.timeout_s.min(10))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("unhealthy: {reason}");
                ExitCode::FAILURE
            }
        };
    }
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let options = BatchOptions {
        max_batch: cli.max_batch.max(1),
        max_delay: Duration::from_millis(cli.max_delay_ms),
        queue: cli.queue.max(1),
    };
    let models = cli
        .models
        .as_deref()
        .expect("clap requires --models unless --health-check");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut instances = Instances::for_cores(cli.instances, cores);
    if let Some(threads) = cli.intra_op_threads {
        instances.intra_op_threads = threads.max(1);
    }
    instances.inter_op_threads = cli.inter_op_threads.max(1);
    instances.spin = cli.spin;
    let registry = Arc::new(Registry::load(models, options, cli.device, instances)?);
    for model in registry.models.values() {
        tracing::info!(
            model = model.name,
            task = model.card.task.name(),
            input = format!("{}×{}", model.card.input.width, model.card.input.height),
            device = %registry.device,
            instances = instances.count,
            intra_op_threads = instances.intra_op_threads,
            "model loaded"
        );
    }
    let app = router(registry, &cli);
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    // The first stdout line says where to connect (tests and scripts read it).
    let addr = listener.local_addr()?;
    println!("serve: listening on http://{addr}");
    tracing::info!(%addr, "listening; the demo page is at http://{addr}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

fn router(registry: Arc<Registry>, cli: &Cli) -> Router {
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
        .route("/v1/detect", post(v1::detect))
        .route("/v1/segment", post(v1::segment))
        .route("/v1/landmarks", post(v1::landmarks))
        .route("/v1/embed", post(v1::embed))
        .route("/v1/classify", post(v1::classify))
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
        .layer(axum::middleware::map_response(api::json_errors))
        .layer(axum::middleware::from_fn(telemetry::access_log))
        // Outermost: the request id exists before anything logs, and every answer carries it.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down, finishing in-flight requests");
}
