//! The models a server holds: every subdirectory of `--models` with a `model.json` card and a
//! `model.onnx` graph (what `export` writes), each with its own worker.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use exemplar_inference::ModelCard;
use exemplar_inference::runtime::{cuda_provider, environment};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::SessionBuilder;

use crate::metrics::Metrics;
use crate::worker::{BatchOptions, ModelInput, Placement, Worker};

pub struct Model {
    pub name: String,
    pub card: ModelCard,
    pub worker: Worker,
}

pub struct Registry {
    pub models: BTreeMap<String, Model>,
    pub metrics: Arc<Metrics>,
    /// Where the models run, as logged at start-up: "CPU" or "CUDA:N".
    pub device: String,
}

/// Where to run the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 when the CUDA execution provider loads, the CPU otherwise.
    Auto,
    Cpu,
    /// This CUDA device, or an error.
    Cuda(i32),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!("unknown device '{s}' (expected auto, cpu, cuda or cuda:N)")
                }),
        }
    }
}

/// How many sessions each model gets, and the threads each session computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instances {
    /// Sessions per model, each on its own thread, sharing the model's queue.
    pub count: usize,
    /// Threads one session splits an operator over (ONNX Runtime's intra-op pool).
    pub intra_op_threads: usize,
    /// Threads running independent operators side by side; above 1 this turns on ONNX
    /// Runtime's parallel execution mode.
    pub inter_op_threads: usize,
    /// Let the intra-op threads busy-wait between operators. Off by default: on a few cores
    /// the waiting threads take the CPU that decoding and HTTP need (docs/serving-speed.md).
    pub spin: bool,
}

impl Instances {
    /// `count` sessions sharing the machine's cores between them.
    pub fn for_cores(count: usize, cores: usize) -> Self {
        let count = count.max(1);
        Self {
            count,
            intra_op_threads: (cores / count).max(1),
            inter_op_threads: 1,
            spin: false,
        }
    }
}

/// A session builder with `instances`' threading.
fn builder(environment: &'static Environment, instances: Instances) -> ort::Result<SessionBuilder> {
    let mut builder = Session::builder(environment)?
        .with_intra_threads(instances.intra_op_threads)?
        .with_inter_threads(instances.inter_op_threads)?
        .with_intra_op_spinning(instances.spin)?
        .with_inter_op_spinning(instances.spin)?;
    if instances.inter_op_threads > 1 {
        builder = builder.with_parallel_execution(true)?;
    }
    Ok(builder)
}

/// A session for `graph` on `device`; the device it really runs on.
fn session(
    graph: &Path,
    device: DeviceChoice,
    instances: Instances,
) -> anyhow::Result<(Session, Placement)> {
    let environment = environment()?;
    let failed = |e: ort::Error| anyhow::anyhow!("{}: {e}", graph.display());
    let cuda = match device {
        DeviceChoice::Cpu => None,
        DeviceChoice::Auto => Some(0),
        DeviceChoice::Cuda(id) => Some(id),
    };
    if let Some(id) = cuda {
        let provider = cuda_provider(id).build().error_on_failure();
        let attempt = builder(environment, instances)
            .map_err(failed)?
            .with_execution_providers([provider]);
        match attempt {
            Ok(mut builder) => {
                return Ok((
                    builder.commit_from_file(graph).map_err(failed)?,
                    Placement::Cuda(id),
                ));
            }
            Err(e) if device == DeviceChoice::Auto => {
                tracing::warn!(error = %e, "CUDA is not available; running on the CPU");
            }
            Err(e) => anyhow::bail!(
                "the CUDA execution provider did not load: {e} (install it with scripts/install-onnxruntime.sh --cuda)"
            ),
        }
    }
    let session = builder(environment, instances)
        .and_then(|mut b| b.commit_from_file(graph))
        .map_err(failed)?;
    Ok((session, Placement::Cpu))
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
            let graph = path.join("model.onnx");
            let (first, placed) = session(&graph, device, instances)?;
            if device == DeviceChoice::Auto && placed == Placement::Cpu {
                // CUDA did not load for this model; it will not for the next ones either.
                device = DeviceChoice::Cpu;
            }
            used = placed;
            let pinned = match placed {
                Placement::Cpu => DeviceChoice::Cpu,
                Placement::Cuda(id) => DeviceChoice::Cuda(id),
            };
            let mut sessions = vec![first];
            for _ in 1..instances.count {
                sessions.push(session(&graph, pinned, instances)?.0);
            }
            let worker = Worker::spawn(
                &name,
                sessions,
                ModelInput::of(&card),
                placed,
                options,
                Arc::clone(&metrics),
            )?;
            models.insert(name.clone(), Model { name, card, worker });
        }
        Ok(Self {
            models,
            metrics,
            device: used.to_string(),
        })
    }
}
