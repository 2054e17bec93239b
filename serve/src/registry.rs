//! The models a server holds: every subdirectory of `--models` with a `model.json` card and a
//! `model.onnx` graph (what `export` writes), each with its own worker.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use exemplar_inference::ModelCard;
use exemplar_inference::runtime::environment;
use ort::session::Session;

use crate::metrics::Metrics;
use crate::worker::{BatchOptions, Worker};

pub struct Model {
    pub name: String,
    pub card: ModelCard,
    pub worker: Worker,
}

pub struct Registry {
    pub models: BTreeMap<String, Model>,
    pub metrics: Arc<Metrics>,
    /// Where the models run: "CPU" (the CUDA provider is not wired in yet).
    pub device: String,
}

impl Registry {
    /// Loads every model under `dir`; any unreadable model is an error naming it.
    pub fn load(dir: &Path, options: BatchOptions) -> anyhow::Result<Self> {
        let environment = environment()?;
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
        for path in entries {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow::anyhow!("{}: the folder name is not UTF-8", path.display()))?
                .to_string();
            let card = ModelCard::read(&path.join("model.json"))?;
            let graph = path.join("model.onnx");
            let session = Session::builder(environment)
                .and_then(|mut b| b.commit_from_file(&graph))
                .map_err(|e| anyhow::anyhow!("{}: {e}", graph.display()))?;
            let dims = [3, card.input.height, card.input.width];
            let worker = Worker::spawn(
                &name,
                session,
                card.input.name.clone(),
                dims,
                options,
                Arc::clone(&metrics),
            )?;
            models.insert(name.clone(), Model { name, card, worker });
        }
        Ok(Self {
            models,
            metrics,
            device: "CPU".into(),
        })
    }
}
