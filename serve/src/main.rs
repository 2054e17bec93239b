//! `serve`: an HTTP service for models exported by `export`, on ONNX Runtime. It does not link
//! burn, so it starts fast and its image stays small.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use exemplar_serve::cli::Cli;
use exemplar_serve::{health, server, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.health_check {
        let timeout = Duration::from_secs(cli.timeout_s.min(10));
        return match health::check(cli.addr, timeout, cli.tls_cert.is_some()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("unhealthy: {reason}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The span exporter's gRPC client runs on this runtime.
    let tracing = match runtime
        .block_on(async { telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref()) })
    {
        Ok(tracing) => tracing,
        Err(e) => {
            eprintln!("error: cannot export spans to --otlp-endpoint: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(server::run(cli));
    tracing.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
