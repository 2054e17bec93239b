//! The fused CPU kernels (exemplar-kernels) change the speed of training, not its result: each
//! training step they compute matches the same step computed in float64, to float32 tolerance,
//! for ten steps in a row.
//!
//! The reference is burn's own operations with every tensor in f64. A device's default float type
//! is fixed for the life of a process, so the reference runs in a child process (this test binary
//! again, the ignored test `f64_reference`), which trains from the parent's initial state and
//! writes its state before and after every step. The parent then loads each state before a
//! step in f32 and takes that one step with the kernels, and once more with burn's own
//! convolution and batch norm, and compares each with the reference's step: its loss, and how
//! far the updated query parameters land from the reference's, relative to the length of the
//! reference's update.
//!
//! Each step starts from the reference's state ("teacher forcing"), so nothing compounds.
//! Whole trajectories cannot be compared tightly. These tiny runs (batch 8) are chaotic: in
//! burn alone a learning rate changed by one part in a million moves Exemplar-v2's sixth loss by
//! about 1e-2.
//!
//! The images are 32 px, so that the first stage's 32 × 32 maps go through the kernels' direct
//! route (no patch matrix) and the smaller ones through the patch route.
//!
//! Measured at 16 px (2-core AMD EPYC, 2026-12-06), over the ten steps of each method:
//! - the kernels' losses are within 1.1e-7 of the reference's and their updates within 5.2e-6;
//! - burn's own f32 operations are as close on every step but one. At Exemplar-v2's step 2 its
//!   update is 6.7e-3 off, the error lying in the BatchNorm γ and β gradients of every stage
//!   (1–1.6% of their update).
//!
//! At 32 px, with the direct route: the kernels within 2.0e-7 (losses) and 1.3e-5 (updates);
//! burn's own operations 4.2e-3 off at the supervised step 3 and 2.1e-2 at Exemplar-v2's step 2.
//!
//! The old test compared whole runs and had to allow them to be 1% apart. For Exemplar-v2 the
//! runs parted at that step, where the kernels were the side that agreed with the reference. The
//! supervised runs' 0.3% by step 6 grew from steps that each differ by rounding (at most 2.9e-6
//! here, on either side).
//!
//! The kernels compute batch-norm sums in f64, but that is not why they agree. Two edits to them
//! were tried:
//! - f32 sums in the forward statistics: updates within 8.9e-6 on every step;
//! - f32 sums in the backward pass: updates within 5.3e-6 on every step.
//!
//! Either way the kernels still track the reference, so the f64 sums can stay or go. Scaling the
//! kernels' batch-norm input gradient by 1 + 1e-4 puts the first step's update 8.6e-4 off,
//! which fails. The tolerances below are about 5× and 8× what was measured.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, FloatDType, Tensor, TensorData};
use clap::ValueEnum;
use exemplar_data::loader::Batch;
use exemplar_data::synthetic::{Stream, SyntheticObjects};
use exemplar_models::{Depth, Encoder, KeyQueue, Stem};
use exemplar_train::config::{Method, PretrainConfig};
use exemplar_train::pretrain::{Learner, optimizer, train_step};

const STEPS: usize = 10;
const LR: f64 = 0.05;
/// Largest relative difference of a step's loss from the reference's.
const LOSS_TOLERANCE: f64 = 1e-6;
/// Largest distance of the updated parameters from the reference's, relative to the length of
/// the reference's update.
const UPDATE_TOLERANCE: f64 = 1e-4;
/// Set for the child process: `METHOD:DIRECTORY`.
const CHILD: &str = "EXEMPLAR_F64_REFERENCE";

fn config(method: Method) -> PretrainConfig {
    let mut config = PretrainConfig::defaults(method);
    config.arch = Depth::ResNet18;
    config.width = 0.125;
    config.stem = Stem::Small;
    config.image_size = 32;
    config.batch_size = 8;
    config.queue_size = 32;
    config.key_momentum = 0.9;
    config
}

fn batch(config: &PretrainConfig, step: usize) -> Batch {
    let data = SyntheticObjects::new(0, Stream::Train, 64, config.image_size);
    config
        .batch_plan()
        .build(&data, step)
        .expect("synthetic data")
}

fn state_dir(run: &Path, step: usize) -> PathBuf {
    run.join(format!("state-{step}"))
}

/// Writes the learner and the optimizer to `dir`, the queue's keys in f64.
fn save(dir: &Path, learner: &Learner, optim: &ModuleOptimizer) {
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).expect(name);
    let record = |encoder: &Encoder| {
        let bytes = encoder.clone().into_record().into_bytes();
        bytes.expect("a serialisable encoder").to_vec()
    };
    std::fs::create_dir_all(dir).expect("a state directory");
    write("optimizer", optim.into_bytes().expect("optimizer").to_vec());
    match learner {
        Learner::Supervised { model } => write("model", record(model)),
        Learner::Contrastive { query, key, queue } => {
            write("model", record(query));
            write("key", record(key));
            let keys = queue.keys().into_data().convert::<f64>();
            write(
                "queue",
                keys.iter::<f64>().flat_map(f64::to_le_bytes).collect(),
            );
            let mut header = vec![queue.ptr() as i64, queue.dim() as i64];
            header.extend(queue.labels());
            let text: Vec<String> = header.iter().map(i64::to_string).collect();
            write("queue-labels", text.join(" ").into_bytes());
        }
    }
}

/// Reads what [`save`] wrote onto `device`, every float tensor as `dtype`.
fn load(dir: &Path, config: &PretrainConfig, device: &Device, dtype: FloatDType) -> Learner {
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    let restore = |encoder: Encoder, name: &str| {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(name))).expect(name);
        encoder.load_record(record).map(&mut Cast(dtype))
    };
    match Learner::new(config, 10, device) {
        Learner::Supervised { model } => Learner::Supervised {
            model: restore(model, "model"),
        },
        Learner::Contrastive { query, key, .. } => {
            let header = String::from_utf8(read("queue-labels")).expect("text");
            let header: Vec<i64> = header.split(' ').map(|v| v.parse().expect("int")).collect();
            let (ptr, dim, labels) = (header[0] as usize, header[1] as usize, &header[2..]);
            let keys: Vec<f64> = read("queue")
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let keys = TensorData::new(keys, [labels.len(), dim]);
            Learner::Contrastive {
                query: restore(query, "model"),
                key: restore(key, "key").no_grad(),
                queue: KeyQueue::from_parts(Tensor::from_data(keys, device), labels.to_vec(), ptr),
            }
        }
    }
}

/// The optimizer's state, on the device's default float type (its records load that way).
fn load_optimizer(dir: &Path, config: &PretrainConfig) -> ModuleOptimizer {
    let bytes = std::fs::read(dir.join("optimizer")).expect("optimizer");
    optimizer(config)
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .expect("an optimizer record")
}

/// Casts every float parameter (records load in the precision they were saved in), keeping
/// which ones are trained.
struct Cast(FloatDType);

impl ModuleMapper for Cast {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|tensor| {
            let trained = tensor.is_require_grad();
            let cast = tensor.cast(dtype).detach();
            if trained { cast.require_grad() } else { cast }
        })
    }
}

/// The trained parameters of the query encoder (or the supervised model), in visiting order.
#[derive(Default)]
struct Parameters {
    path: Vec<String>,
    values: Vec<f64>,
}

impl ModuleVisitor for Parameters {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            let data = param.val().into_data().convert::<f64>();
            self.values.extend(data.iter::<f64>());
        }
    }
}

fn parameters(learner: &Learner) -> Vec<f64> {
    let mut visitor = Parameters::default();
    match learner {
        Learner::Contrastive { query, .. } => query.visit(&mut visitor),
        Learner::Supervised { model } => model.visit(&mut visitor),
    }
    visitor.values
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The child process: `STEPS` steps in f64 from the parent's initial state, each state and the
/// losses written to the directory the parent named.
#[test]
#[ignore = "the float64 reference; each_step_… starts it in a process of its own"]
fn f64_reference() {
    let spec = std::env::var(CHILD).expect("started by the parent test, which sets it");
    let (method, run) = spec.split_once(':').expect("METHOD:DIRECTORY");
    let method = Method::from_str(method, true).expect("a method name");
    let (config, run) = (config(method), Path::new(run));
    let mut device = Device::flex();
    device
        .configure(FloatDType::F64)
        .expect("flex computes in f64");
    let device = device.autodiff();
    let mut learner = load(&state_dir(run, 0), &config, &device, FloatDType::F64);
    let mut optim = load_optimizer(&state_dir(run, 0), &config);
    let mut losses = Vec::with_capacity(STEPS);
    for step in 0..STEPS {
        let loss;
        let batch = batch(&config, step);
        (learner, loss, _) = train_step(learner, &mut optim, batch, &config, LR, &device);
        losses.push(format!("{loss:e}"));
        save(&state_dir(run, step + 1), &learner, &optim);
    }
    std::fs::write(run.join("losses"), losses.join(" ")).expect("losses");
}

/// Runs the reference for `method` and returns its directory and losses.
fn reference(method: Method, device: &Device) -> (PathBuf, Vec<f64>) {
    let config = config(method);
    let run = std::env::temp_dir().join(format!(
        "exemplar-f64-reference-{}-{}",
        method.name(),
        std::process::id()
    ));
    save(
        &state_dir(&run, 0),
        &Learner::new(&config, 10, device),
        &optimizer(&config),
    );
    let status = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["f64_reference", "--exact", "--include-ignored", "--quiet"])
        .env(CHILD, format!("{}:{}", method.name(), run.display()))
        .status()
        .expect("the reference process starts");
    assert!(status.success(), "the f64 reference failed: {status}");
    let losses = std::fs::read_to_string(run.join("losses")).expect("the reference's losses");
    let losses = losses
        .split(' ')
        .map(|l| l.parse().expect("a loss"))
        .collect();
    (run, losses)
}

/// The loss's relative error and the update's, of one f32 step from the reference's state.
fn step_error(
    run: &Path,
    config: &PretrainConfig,
    step: usize,
    reference_loss: f64,
    device: &Device,
) -> (f64, f64) {
    let load_f32 = |step| load(&state_dir(run, step), config, device, FloatDType::F32);
    let before = parameters(&load_f32(step));
    let after = parameters(&load_f32(step + 1));
    let mut optim = load_optimizer(&state_dir(run, step), config);
    let (learner, loss, _) = train_step(
        load_f32(step),
        &mut optim,
        batch(config, step),
        config,
        LR,
        device,
    );
    let update = distance(&parameters(&learner), &after) / distance(&after, &before);
    ((loss - reference_loss).abs() / reference_loss.abs(), update)
}

fn check(method: Method) {
    let device = Device::flex();
    device.seed(0);
    let device = device.autodiff();
    let config = config(method);
    let (run, losses) = reference(method, &device);
    for (step, &reference_loss) in losses.iter().enumerate() {
        exemplar_kernels::set_enabled(false);
        let (burn_loss, burn_update) = step_error(&run, &config, step, reference_loss, &device);
        exemplar_kernels::set_enabled(true);
        let (loss, update) = step_error(&run, &config, step, reference_loss, &device);
        println!(
            "{} step {step}: loss {reference_loss:.7}; kernels {loss:.1e} {update:.1e}, \
             burn {burn_loss:.1e} {burn_update:.1e}",
            method.name()
        );
        assert!(
            loss <= LOSS_TOLERANCE && update <= UPDATE_TOLERANCE,
            "{} step {step}: with the kernels the loss is {loss:.1e} off the f64 reference's \
             and the update {update:.1e} (burn's own operations: {burn_loss:.1e}, \
             {burn_update:.1e})",
            method.name()
        );
    }
    std::fs::remove_dir_all(&run).ok();
}

#[test]
fn each_step_with_the_kernels_matches_a_float64_reference() {
    check(Method::Supervised);
    check(Method::ExemplarV2);
}
