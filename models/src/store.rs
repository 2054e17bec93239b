//! Files that hold modules: crash-safe writes and burn records with errors that name the file.
//!
//! Every artefact is written to a temporary name in its directory, flushed to disk and renamed
//! into place, so a process killed at any instant leaves either the old file or the new one,
//! never half of one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleRecord, RecordError};
use burn::tensor::Bytes;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the weights do not fit {what}")]
    Weights {
        path: PathBuf,
        what: String,
        #[source]
        source: RecordError,
    },
    #[error("cannot serialise the weights of {what}")]
    Serialise {
        what: String,
        #[source]
        source: RecordError,
    },
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir);
    Ok(())
}

/// [`atomic_write`] with an error that names the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    atomic_write(path, bytes).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a rename durable. Best effort: not every file system supports syncing a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// The record of `module` in inference mode, as bytes. `valid()` folds in the BatchNorm running
/// statistics' latest per-thread updates.
pub fn record_bytes<M: Module>(module: &M, what: &str) -> Result<Vec<u8>, StoreError> {
    let bytes = module
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|source| StoreError::Serialise {
            what: what.to_string(),
            source,
        })?;
    Ok(bytes.to_vec())
}

/// Writes the record of `module` to `path` atomically.
pub fn save_module<M: Module>(path: &Path, module: &M, what: &str) -> Result<(), StoreError> {
    write_file(path, &record_bytes(module, what)?)
}

/// Applies the record saved in `path` to `module` (`what` names the architecture in errors).
pub fn load_module<M: Module>(path: &Path, module: M, what: &str) -> Result<M, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_module_bytes(path, bytes, module, what)
}

/// [`load_module`] for bytes already read from `path`.
pub fn load_module_bytes<M: Module>(
    path: &Path,
    bytes: Vec<u8>,
    module: M,
    what: &str,
) -> Result<M, StoreError> {
    let weights_error = |source| StoreError::Weights {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(weights_error)?;
    module.try_load_record(record).map_err(weights_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/y.json");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_dir(dir.path().join("x")).unwrap().count(), 1);
    }
}
