//! What a fine-tuning run saves and reads back: the model with its `network.json` and card,
//! checkpoints for `--resume`, and finished runs loaded for evaluation.

use std::path::Path;

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use exemplar_inference::ModelCard;
use exemplar_inference::card::{CARD_FORMAT, InputSpec, Provenance};
use exemplar_models::network::NETWORK_CONFIG;
use exemplar_models::store::{load_module, record_bytes};
use serde::{Deserialize, Serialize};

use super::config::{FinetuneConfig, Init};
use super::{
    EvalInput, Evaluation, FromConfig, MODEL_CARD, MODEL_WEIGHTS, OpenSplit, Task, TaskKind,
};
use crate::checkpoint::{atomic_write, write_checkpoint};
use crate::run::resume::{Resumed, STATE_FILE};
use crate::run::{RunError, io_error};
use exemplar_data::Split;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    step: usize,
    task: TaskKind,
}

/// The card saved beside the model and every checkpoint.
pub fn model_card<T: Task>(task: &T, config: &FinetuneConfig, steps: usize) -> ModelCard {
    let (spec, outputs) = task.card_task(config);
    let init = match &config.init {
        Init::Run(dir) => {
            let method = exemplar_models::card::load_backbone_card(dir)
                .map(|c| c.method.to_string())
                .unwrap_or_else(|_| "pretrained".into());
            format!("{method} ({})", dir.display())
        }
        other => other.to_string(),
    };
    ModelCard {
        format: CARD_FORMAT.into(),
        task: spec,
        class_names: task.class_names().to_vec(),
        input: InputSpec {
            name: "images".into(),
            width: config.image_size,
            height: config.image_size,
            normalization: config.normalization,
            datatype: Default::default(),
        },
        outputs,
        provenance: Provenance {
            backbone: config.backbone_config().describe(),
            init,
            data: config.data.to_string(),
            steps,
        },
    }
}

pub(super) fn save_model<M: Module>(
    run_dir: &Path,
    model: &M,
    card: &ModelCard,
    network: &str,
) -> Result<(), RunError> {
    let weights = run_dir.join(MODEL_WEIGHTS);
    atomic_write(&weights, &record_bytes(model, "the model")?).map_err(io_error(&weights))?;
    let network_path = run_dir.join(NETWORK_CONFIG);
    atomic_write(&network_path, network.as_bytes()).map_err(io_error(&network_path))?;
    let card_path = run_dir.join(MODEL_CARD);
    atomic_write(&card_path, card.to_json().as_bytes()).map_err(io_error(&card_path))
}

pub(super) fn save_checkpoint<M: Module>(
    run_dir: &Path,
    step: usize,
    model: &M,
    optim: &ModuleOptimizer,
    config: &FinetuneConfig,
    card: &ModelCard,
    network: &str,
) -> Result<(), RunError> {
    let optimizer = optim
        .into_bytes()
        .map_err(|e| RunError::Setup(format!("cannot serialise the optimizer: {e}")))?
        .to_vec();
    let state = serde_json::to_vec(&LoopState {
        step,
        task: config.task,
    })
    .expect("serialisable");
    let model = record_bytes(model, "the model")?;
    let card = card.to_json().into_bytes();
    let files: [(&str, &[u8]); 5] = [
        (MODEL_WEIGHTS, &model),
        ("optimizer.bpk", &optimizer),
        (STATE_FILE, &state),
        (NETWORK_CONFIG, network.as_bytes()),
        (MODEL_CARD, &card),
    ];
    write_checkpoint(run_dir, step, &files, config.keep_checkpoints)
        .map_err(io_error(&run_dir.join("checkpoints")))?;
    Ok(())
}

pub(super) fn restore<T: Task>(
    task: &T,
    config: &FinetuneConfig,
    run_dir: &Path,
    device: &Device,
) -> Result<(usize, T::Model, burn::optim::OptimizerRecord), RunError> {
    let checkpoint = Resumed::latest(run_dir)?;
    let step = checkpoint.step;
    let fail = |reason: String| checkpoint.fail(reason);
    let read = |name: &str| checkpoint.read(name);
    let state: LoopState = checkpoint.state()?;
    if state.step != step || state.task != config.task {
        return Err(fail(format!(
            "checkpoint is step {} of {}, expected step {step} of {}",
            state.step, state.task, config.task
        )));
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(MODEL_WEIGHTS)?))
        .map_err(|e| fail(format!("{MODEL_WEIGHTS}: {e}")))?;
    let model = task
        .build(config.backbone_config().init(device), device)
        .try_load_record(record)
        .map_err(|e| fail(format!("{MODEL_WEIGHTS}: {e}")))?;
    let optimizer = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read("optimizer.bpk")?))
        .map_err(|e| fail(format!("optimizer.bpk: {e}")))?;
    Ok((step, model, optimizer))
}

/// A fine-tuned run loaded for evaluation: its configuration, task and model (inference mode).
pub fn load_run<T: Task + FromConfig + OpenSplit>(
    run_dir: &Path,
    config: &FinetuneConfig,
    class_names: Vec<String>,
    device: &Device,
) -> Result<(T, T::Model), RunError> {
    let task = T::from_config(config, class_names);
    let weights = run_dir.join(MODEL_WEIGHTS);
    let what = format!(
        "the run's configuration ({} on {})",
        config.task,
        config.backbone_config().describe()
    );
    let model = load_module(
        &weights,
        task.build(config.backbone_config().init(device), device),
        &what,
    )?;
    Ok((task, model.valid()))
}

/// Evaluates a fine-tuned run on the validation split of `config.data`.
pub fn evaluate_run<T: Task + FromConfig + OpenSplit>(
    run_dir: &Path,
    config: &FinetuneConfig,
    card: &ModelCard,
    device: &Device,
) -> Result<(Evaluation, String), RunError> {
    let val = T::open(config, Split::Val)?;
    let (task, model) = load_run::<T>(run_dir, config, card.class_names.clone(), device)?;
    if val.class_names() != card.class_names.as_slice() {
        return Err(RunError::Setup(format!(
            "{} has classes {:?}, the model was trained on {:?}",
            val.describe(),
            val.class_names(),
            card.class_names
        )));
    }
    let eval = task.evaluate(&model, &val, &EvalInput::from_config(config), device)?;
    Ok((eval, val.describe()))
}
