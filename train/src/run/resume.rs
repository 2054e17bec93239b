//! Reading back the newest checkpoint of a run for `--resume`: its step, its files and its loop
//! state, with errors that name the checkpoint.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::{RunError, io_error};
use crate::checkpoint::latest_checkpoint;

/// The loop state's file in every checkpoint.
pub const STATE_FILE: &str = "state.json";

/// The newest complete checkpoint of a run.
pub struct Resumed {
    pub step: usize,
    pub dir: PathBuf,
}

impl Resumed {
    /// Opens the newest checkpoint of `run_dir`; a run without one cannot be resumed.
    pub fn latest(run_dir: &Path) -> Result<Self, RunError> {
        match latest_checkpoint(run_dir).map_err(io_error(run_dir))? {
            Some((step, dir)) => Ok(Self { step, dir }),
            None => Err(RunError::Resume {
                path: run_dir.to_path_buf(),
                reason: "no checkpoint found (was the run started with this directory?)".into(),
            }),
        }
    }

    /// An error about this checkpoint.
    pub fn fail(&self, reason: String) -> RunError {
        RunError::Resume {
            path: self.dir.clone(),
            reason,
        }
    }

    /// The bytes of the checkpoint's file `name`.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, RunError> {
        std::fs::read(self.dir.join(name)).map_err(|e| self.fail(format!("{name}: {e}")))
    }

    /// The loop state saved as `state.json`.
    pub fn state<S: DeserializeOwned>(&self) -> Result<S, RunError> {
        serde_json::from_slice(&self.read(STATE_FILE)?)
            .map_err(|e| self.fail(format!("{STATE_FILE}: {e}")))
    }
}
