//! `serve`'s command line: every flag, each also read from its environment variable.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Parser;

use crate::runtime::DeviceChoice;
use crate::telemetry::LogFormat;

/// Serve exported exemplar models over HTTP (task endpoints under /v1, Open Inference Protocol
/// health and metadata under /v2).
///
/// Every flag can also be set by its environment variable (EXEMPLAR_MODELS, EXEMPLAR_ADDR, …), as
/// containers are configured; a flag wins over its variable.
#[derive(Debug, Parser)]
#[command(name = "serve", version, args_override_self = true)]
pub struct Cli {
    /// Directory with one subdirectory per model (model.onnx + model.json, as `export` writes).
    #[arg(
        long,
        value_name = "DIR",
        env = "EXEMPLAR_MODELS",
        required_unless_present = "health_check"
    )]
    pub models: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "EXEMPLAR_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Most images one inference call takes (dynamic batching).
    #[arg(long, env = "EXEMPLAR_MAX_BATCH", default_value_t = 8)]
    pub max_batch: usize,
    /// How long the first image of a batch waits for others, in milliseconds.
    #[arg(long, env = "EXEMPLAR_MAX_DELAY_MS", default_value_t = 2)]
    pub max_delay_ms: u64,
    /// Images that may wait per model before requests are refused with 503 (as many as
    /// --concurrency by default, so that only a server past its concurrency refuses).
    #[arg(long, env = "EXEMPLAR_QUEUE", default_value_t = 256)]
    pub queue: usize,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EXEMPLAR_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// ONNX Runtime sessions per model, each on its own thread, taking batches from the model's
    /// one queue (Triton's instance count).
    #[arg(long, env = "EXEMPLAR_INSTANCES", default_value_t = 1)]
    pub instances: usize,
    /// Threads one session computes an operator with [default: the cores divided by
    /// --instances, at least 1].
    #[arg(long, env = "EXEMPLAR_INTRA_OP_THREADS", value_name = "N")]
    pub intra_op_threads: Option<usize>,
    /// Threads running independent operators side by side (above 1, ONNX Runtime's parallel
    /// execution mode).
    #[arg(
        long,
        env = "EXEMPLAR_INTER_OP_THREADS",
        default_value_t = 1,
        value_name = "N"
    )]
    pub inter_op_threads: usize,
    /// Let ONNX Runtime's threads busy-wait for work between operators: lower latency for one
    /// client at a time, at the cost of CPU that decoding and HTTP could use.
    #[arg(long, env = "EXEMPLAR_SPIN")]
    pub spin: bool,
    /// Requests in flight at once; more are refused with 503.
    #[arg(long, env = "EXEMPLAR_CONCURRENCY", default_value_t = 256)]
    pub concurrency: usize,
    /// Per-request time limit, in seconds.
    #[arg(long, env = "EXEMPLAR_TIMEOUT_S", default_value_t = 30)]
    pub timeout_s: u64,
    /// Where to run the models: auto (CUDA when its execution provider loads, else CPU), cpu,
    /// cuda or cuda:N.
    #[arg(long, env = "EXEMPLAR_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Log lines as `human` text or as one `json` object per line (RUST_LOG filters them,
    /// default `info`).
    #[arg(long, env = "EXEMPLAR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Export a span per HTTP and gRPC request over OTLP/gRPC to this collector, e.g.
    /// `http://otel-collector:4317` (OTEL_SERVICE_NAME names the service, default
    /// exemplar-serve); a request's W3C `traceparent` header makes its span part of that trace.
    #[arg(long, env = "EXEMPLAR_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Also serve the Open Inference Protocol over gRPC (KServe's GRPCInferenceService, with
    /// grpc.health.v1) at this address, e.g. 0.0.0.0:8081; port 0 picks a free one.
    #[arg(long, env = "EXEMPLAR_GRPC_ADDR", value_name = "ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Require `Authorization: Bearer KEY` on every route but the health checks (401 without
    /// it); the key is compared in constant time.
    #[arg(
        long,
        env = "EXEMPLAR_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// An origin whose pages may call the API from a browser (CORS), e.g.
    /// `https://app.example.com`; repeat the flag, or separate origins with commas; `*` allows
    /// any. Without it no cross-origin call is allowed.
    #[arg(
        long = "cors-origin",
        env = "EXEMPLAR_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// Requests per second one client (by IP address) may make; more get 429 with
    /// Retry-After. The health checks do not count.
    #[arg(long, env = "EXEMPLAR_RATE_LIMIT", value_name = "N")]
    pub rate_limit: Option<NonZeroU32>,
    /// Requests a client may make at once above its rate [default: --rate-limit].
    #[arg(
        long,
        env = "EXEMPLAR_RATE_BURST",
        value_name = "N",
        requires = "rate_limit"
    )]
    pub rate_burst: Option<NonZeroU32>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(
        long,
        env = "EXEMPLAR_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "EXEMPLAR_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Ask the server at --addr whether it is live (GET /v2/health/live) and exit 0 if it is,
    /// 1 if not: a container health check that needs no curl in the image.
    #[arg(long)]
    pub health_check: bool,
}
