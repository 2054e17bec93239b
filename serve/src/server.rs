//! The server: loads the models, then serves HTTP (or HTTPS) and, with `--grpc-addr`, gRPC,
//! until Ctrl-C or SIGTERM; requests in flight then finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::Cli;
use crate::grpc;
use crate::registry::Registry;
use crate::router::{access_control, router};
use crate::runtime::Instances;
use crate::worker::BatchOptions;

/// Serves `cli`'s models until a shutdown signal.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let access = access_control(&cli)?;
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
    let upkept = Arc::clone(&registry);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkept.metrics.upkeep();
        }
    });
    for model in registry.models.values() {
        tracing::info!(
            model = model.name,
            task = model.card.task.name(),
            input = format!("{}×{}", model.input_size()[0], model.input_size()[1]),
            device = %registry.device,
            instances = instances.count,
            intra_op_threads = instances.intra_op_threads,
            "model loaded"
        );
    }
    let mut grpc_bound = None;
    if let Some(grpc_addr) = cli.grpc_addr {
        let listener = tokio::net::TcpListener::bind(grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {grpc_addr} for gRPC"))?;
        grpc_bound = Some(listener.local_addr()?);
        let guard = grpc::Guard {
            api_key: access.api_key.clone(),
            rate: access.rate.clone(),
            max_message_bytes: cli.max_body_bytes,
            tls: grpc_identity(&cli)?,
        };
        let grpc = grpc::router(Arc::clone(&registry), guard)
            .await
            .context("cannot serve gRPC with --tls-cert and --tls-key")?;
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(async move {
            if let Err(e) = grpc
                .serve_with_incoming_shutdown(incoming, shutdown_signal())
                .await
            {
                tracing::error!(error = %e, "the gRPC server stopped");
            }
        });
    }
    let app = router(registry, &cli, access).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind(cli.addr)
        .with_context(|| format!("cannot listen on {}", cli.addr))?;
    let addr = listener.local_addr()?;
    match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => {
            // One crypto provider for the process, whatever else links rustls.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot use {} and {} for TLS",
                        cert.display(),
                        key.display()
                    )
                })?;
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stopping.graceful_shutdown(Some(Duration::from_secs(cli.timeout_s.max(1))));
            });
            listening("https", addr, grpc_bound);
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app)
                .await?;
        }
        _ => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            listening("http", addr, grpc_bound);
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The certificate and key gRPC serves TLS with: the HTTP side's, so both ports are HTTPS or
/// neither is.
fn grpc_identity(cli: &Cli) -> anyhow::Result<Option<tonic::transport::Identity>> {
    let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {} for TLS", path.display()))
    };
    Ok(Some(tonic::transport::Identity::from_pem(
        read(cert)?,
        read(key)?,
    )))
}

/// The first stdout line says where to connect (tests and scripts read it).
/// The gRPC address, if any, is on the second line.
fn listening(scheme: &str, addr: SocketAddr, grpc: Option<SocketAddr>) {
    println!("serve: listening on {scheme}://{addr}");
    tracing::info!(%addr, "listening; the demo page is at {scheme}://{addr}/");
    if let Some(grpc) = grpc {
        println!("serve: gRPC on {grpc}");
        tracing::info!(addr = %grpc, "gRPC: the Open Inference Protocol and grpc.health.v1");
    }
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
