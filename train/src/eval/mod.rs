//! Evaluation: on frozen features (the kNN monitor, the linear probe, few-shot episodes) and the
//! fine-tuned tasks' metrics (detection AP, segmentation mIoU, landmark error).
pub mod detection;
pub mod detection_errors;
pub mod features;
pub mod fewshot;
pub mod knn;
pub mod landmarks;
pub mod linear;
pub mod segmentation;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::checkpoint::atomic_write;

/// Where an evaluation of `kind` (`knn`, `linear`) of a run is written by default.
pub fn default_result_path(run: &Path, kind: &str) -> PathBuf {
    run.join("eval").join(format!("{kind}.json"))
}

/// Writes an evaluation result, atomically, in the one schema every evaluation uses:
/// `{kind, run, method, data, result}`; `method` says how the evaluated weights were obtained
/// (a pretraining method, or a fine-tuning's initialisation).
pub fn write_result(
    path: &Path,
    kind: &str,
    run: &Path,
    method: &str,
    data: &str,
    result: &impl Serialize,
) -> std::io::Result<()> {
    let value = json!({
        "kind": kind,
        "run": run,
        "method": method,
        "data": data,
        "result": result,
    });
    let bytes = serde_json::to_vec_pretty(&value).expect("evaluation results serialise");
    atomic_write(path, &bytes)
}
