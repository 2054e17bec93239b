//! The models a server holds: every subdirectory of `--models` with a `model.json` card and a
//! `model.onnx` graph (what `export` writes), each with its own worker. What the routes need to
//! know of a model (its input tensor, its protocol metadata) is computed here once, at load.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use exemplar_inference::ModelCard;
use exemplar_inference::served::ServedModel;
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::Metrics;
use crate::runtime::{DeviceChoice, Instances, ModelInput, Placement, onnx};
use crate::worker::{BatchOptions, Worker};

/// A loaded model and the facts about it every route reads.
pub struct Model {
    pub name: String,
    pub card: ModelCard,
    /// Its input tensor: name, `[3, height, width]`, datatype.
    pub input: ModelInput,
    /// Its tensors as the Open Inference Protocol's model metadata lists them (HTTP and gRPC).
    pub tensors: Tensors,
    /// The runtime's name in that metadata.
    pub platform: &'static str,
    pub worker: Worker,
}

/// A tensor's name, datatype and shape (-1: any size).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

/// A model's input and output tensors.
#[derive(Debug, Clone)]
pub struct Tensors {
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

impl Model {
    pub fn new(name: String, card: ModelCard, platform: &'static str, worker: Worker) -> Self {
        let input = ModelInput::of(&card);
        let [channels, height, width] = input.dims;
        let inputs = vec![TensorMetadata {
            name: input.name.clone(),
            datatype: input.datatype.name(),
            shape: vec![-1, channels as i64, height as i64, width as i64],
        }];
        let outputs = card
            .outputs
            .iter()
            .map(|o| TensorMetadata {
                name: o.name.clone(),
                datatype: "FP32",
                shape: o.shape.iter().map(|d| d.parse().unwrap_or(-1)).collect(),
            })
            .collect();
        Self {
            name,
            card,
            input,
            tensors: Tensors { inputs, outputs },
            platform,
            worker,
        }
    }

    /// The `[width, height]` the network takes.
    pub fn input_size(&self) -> [usize; 2] {
        let [_, height, width] = self.input.dims;
        [width, height]
    }

    /// What a task's answer needs of the model (`exemplar_inference::served`).
    pub fn served(&self) -> ServedModel<'_> {
        ServedModel {
            name: &self.name,
            card: &self.card,
            input_size: self.input_size(),
        }
    }
}

pub struct Registry {
    pub models: BTreeMap<String, Model>,
    pub metrics: Arc<Metrics>,
    /// Where the models run, as logged at start-up: "CPU" or "CUDA:N".
    pub device: String,
}

impl Registry {
    /// Loads every model under `dir`; any unreadable model is an error naming it.
    pub fn load(
        dir: &Path,
        options: BatchOptions,
        mut device: DeviceChoice,
        instances: Instances,
    ) -> anyhow::Result<Self> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("model.json").is_file())
            .collect();
        entries.sort();
        if entries.is_empty() {
            anyhow::bail!(
                "{} holds no exported models (expected subdirectories with model.json and model.onnx)",
                dir.display()
            );
        }
        let metrics = Arc::new(Metrics::default());
        let mut models = BTreeMap::new();
        let mut used = Placement::Cpu;
        for path in entries {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow::anyhow!("{}: the folder name is not UTF-8", path.display()))?
                .to_string();
            let card = ModelCard::read(&path.join("model.json"))?;
            let input = ModelInput::of(&card);
            let loaded = onnx::load(&path.join("model.onnx"), &input, device, instances)?;
            if device == DeviceChoice::Auto && loaded.placement == Placement::Cpu {
                // CUDA did not load for this model; it will not for the next ones either.
                device = DeviceChoice::Cpu;
            }
            used = loaded.placement;
            let worker = Worker::spawn(
                &name,
                loaded.instances,
                loaded.placement,
                options,
                Arc::clone(&metrics),
            )?;
            let model = Model::new(name.clone(), card, onnx::PLATFORM, worker);
            models.insert(name, model);
        }
        Ok(Self {
            models,
            metrics,
            device: used.to_string(),
        })
    }
}
