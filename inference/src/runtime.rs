//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic` (its default download comes from a CDN that is not
//! reachable from our machines or CI). The library comes from the `onnxruntime` PyPI
//! wheel, which `scripts/install-onnxruntime.sh` unpacks into the project's `.runtime/`. It is
//! looked up, in order, at `ORT_DYLIB_PATH`, then in `.runtime/onnxruntime/` of the current
//! directory and of every directory above the running executable (so `target/debug/export`
//! finds the project's copy without any variable set).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use thiserror::Error;

/// The version the install script fetches and the `ort` bindings (`api-31`) expect.
pub const ORT_VERSION: &str = "1.31.1";

#[derive(Debug, Error, Clone)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime {ORT_VERSION} was not found: run scripts/install-onnxruntime.sh in the project, or set ORT_DYLIB_PATH to libonnxruntime.so"
    )]
    NotFound,
    #[error("ORT_DYLIB_PATH={0} does not exist")]
    BadVariable(String),
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
}

/// The library file to load.
pub fn library_path() -> Result<PathBuf, RuntimeError> {
    if let Some(explicit) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(&explicit);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(RuntimeError::BadVariable(path.display().to_string()))
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        roots.push(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .iter()
        .map(|root| {
            root.join(".runtime/onnxruntime")
                .join(format!("libonnxruntime.so.{ORT_VERSION}"))
        })
        .find(|candidate| candidate.is_file())
        .ok_or(RuntimeError::NotFound)
}

/// The process-wide ONNX Runtime environment, loaded on first use. `ort` binds the library
/// once per process, so every caller shares this one.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, RuntimeError>> =
        OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = library_path()?;
            let load = |reason: String| RuntimeError::Load {
                path: path.clone(),
                reason,
            };
            ort::init_from(&path)
                .map_err(|e| load(e.to_string()))?
                .with_name("exemplar")
                .build()
                .map_err(|e| load(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The CUDA execution provider on `device` as serve configures it: cuDNN's exhaustive
/// convolution search with an unlimited workspace, since the default search maps to a slow
/// fallback since ONNX Runtime 1.20. Callers may add options before `build()`.
pub fn cuda_provider(device: i32) -> ort::ep::CUDA {
    ort::ep::CUDA::default()
        .with_device_id(device)
        .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Exhaustive)
        .with_conv_max_workspace(true)
}
