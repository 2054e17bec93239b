//! A pretraining checkpoint: the encoders (through `valid()`, which folds in the BatchNorm
//! running statistics' latest per-thread updates), the optimizer, the queue's keys and labels and
//! the loop state, written as one directory (`crate::checkpoint`) and read back for `--resume`.

use std::path::Path;

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use exemplar_models::store::record_bytes;
use exemplar_models::{Encoder, EncoderConfig, KeyQueue};
use serde::{Deserialize, Serialize};

use super::Learner;
use crate::checkpoint::write_checkpoint;
use crate::config::PretrainConfig;
use crate::run::resume::{Resumed, STATE_FILE};
use crate::run::{RunError, io_error};

/// Loop state saved in each checkpoint beside the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    step: usize,
    method: String,
    queue_ptr: usize,
    queue_labels: Vec<i64>,
    queue_dim: usize,
}

pub(super) fn restore(
    config: &PretrainConfig,
    run_dir: &Path,
    encoder: &EncoderConfig,
    device: &Device,
    optim: &mut ModuleOptimizer,
) -> Result<(Learner, usize), RunError> {
    let checkpoint = Resumed::latest(run_dir)?;
    let step = checkpoint.step;
    let fail = |reason: String| checkpoint.fail(reason);
    let read = |name: &str| checkpoint.read(name);
    let state: LoopState = checkpoint.state()?;
    if state.step != step || state.method != config.method.name() {
        return Err(fail(format!(
            "checkpoint is step {} of {}, expected step {step} of {}",
            state.step, state.method, config.method
        )));
    }
    let load = |name: &str| -> Result<Encoder, RunError> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(name)?))
            .map_err(|e| fail(format!("{name}: {e}")))?;
        encoder
            .init(device)
            .try_load_record(record)
            .map_err(|e| fail(format!("{name}: {e}")))
    };
    let optimizer = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read("optimizer.bpk")?))
        .map_err(|e| fail(format!("optimizer.bpk: {e}")))?;
    let learner = if config.method.is_contrastive() {
        let query = load("query.bpk")?;
        let key = load("key.bpk")?.no_grad();
        let raw = read("queue.bin")?;
        let expected = config.queue_size * state.queue_dim * 4;
        if raw.len() != expected
            || state.queue_labels.len() != config.queue_size
            || state.queue_ptr >= config.queue_size
        {
            return Err(fail(format!(
                "queue.bin holds {} bytes, expected {expected} for {} keys of {}",
                raw.len(),
                config.queue_size,
                state.queue_dim
            )));
        }
        let keys: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let keys = Tensor::<2>::from_data(
            TensorData::new(keys, [config.queue_size, state.queue_dim]),
            device,
        );
        let queue = KeyQueue::from_parts(keys, state.queue_labels, state.queue_ptr);
        Learner::Contrastive { query, key, queue }
    } else {
        Learner::Supervised {
            model: load("model.bpk")?,
        }
    };
    *optim = std::mem::replace(optim, super::optimizer(config)).load_record(optimizer);
    Ok((learner, step))
}

pub(super) fn save_checkpoint(
    run_dir: &Path,
    step: usize,
    learner: &Learner,
    optim: &ModuleOptimizer,
    config: &PretrainConfig,
) -> Result<(), RunError> {
    let record_error = |what: &str, e: burn::store::RecordError| {
        RunError::Setup(format!("cannot serialise {what}: {e}"))
    };
    let optimizer = optim
        .into_bytes()
        .map_err(|e| record_error("optimizer", e))?
        .to_vec();
    let mut files: Vec<(&str, Vec<u8>)> = vec![("optimizer.bpk", optimizer)];
    let mut state = LoopState {
        step,
        method: config.method.name().to_string(),
        queue_ptr: 0,
        queue_labels: Vec::new(),
        queue_dim: 0,
    };
    match learner {
        Learner::Contrastive { query, key, queue } => {
            files.push(("query.bpk", record_bytes(query, "the query encoder")?));
            files.push(("key.bpk", record_bytes(key, "the key encoder")?));
            let keys: Vec<u8> = queue
                .keys()
                .into_data()
                .iter::<f32>()
                .flat_map(f32::to_le_bytes)
                .collect();
            files.push(("queue.bin", keys));
            state.queue_ptr = queue.ptr();
            state.queue_labels = queue.labels().to_vec();
            state.queue_dim = queue.dim();
        }
        Learner::Supervised { model } => {
            files.push(("model.bpk", record_bytes(model, "the model")?))
        }
    }
    files.push((
        STATE_FILE,
        serde_json::to_vec(&state).expect("serialisable"),
    ));
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write_checkpoint(run_dir, step, &borrowed, config.keep_checkpoints)
        .map_err(io_error(&run_dir.join("checkpoints")))?;
    Ok(())
}
