//! The one error type of pretraining and fine-tuning runs. Each variant keeps its source, so
//! `train` prints the file and the cause under it.

use std::path::{Path, PathBuf};

use exemplar_models::card::CardError;
use exemplar_models::store::StoreError;
use exemplar_models::torchvision::TorchvisionError;
use thiserror::Error;

use crate::device::DeviceError;
use exemplar_data::DataError;

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A pretraining run's backbone, read or written.
    #[error(transparent)]
    Card(#[from] CardError),
    /// Weights, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PyTorch weights given to `--init`.
    #[error(transparent)]
    Torchvision(#[from] TorchvisionError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint that does not belong to this run or cannot be read back.
    #[error("cannot resume from {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    /// A configuration or data combination the loop cannot run (checked before training).
    #[error("{0}")]
    Setup(String),
}

/// Maps an I/O error on `path` to [`RunError::Io`].
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}
