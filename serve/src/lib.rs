//! exemplar-serve: an HTTP and gRPC service for models exported by `export`, on ONNX Runtime.
//! It does not link burn, so it starts fast and its image stays small.
//!
//! - [`server`] runs it: the HTTP router ([`router`]: [`v1`] task routes, [`oip`] Open Inference
//!   Protocol, [`openapi`], [`page`], [`health`], [`metrics`]), gRPC ([`grpc`]), TLS and access
//!   control ([`access`]);
//! - [`registry`] loads the models and computes what the routes need to know of each;
//! - [`worker`] batches each model's requests onto its instances;
//! - [`runtime`] computes the batches: one trait, with ONNX Runtime behind it.
//!
//! The `serve` binary (`src/main.rs`) parses the command line and calls [`server::run`].

pub mod access;
pub mod api;
pub mod cli;
pub mod error;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod oip;
pub mod openapi;
pub mod page;
pub mod predict;
pub mod registry;
pub mod router;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod upload;
pub mod v1;
pub mod worker;
