//! The trainer's GPU code path, against the CPU.
//!
//! Everything that runs only on a GPU backend runs here: burn's own convolution and batch norm
//! (the CPU build uses the project's kernels), the CPU-drawn weights and the labelled queue moved
//! to the device, cubecl's autotuning, and results read back for logs and checkpoints. Two
//! tests:
//! - every model's gradients at one batch, parameter by parameter;
//! - training runs on the device, step by step against the CPU's from the same seed:
//!   Exemplar-v2 pretraining resumed across devices both ways, supervised pretraining, each
//!   task's fine-tuning, and the export of a model trained on the device.
//!
//! They need a GPU device and a build with its feature, so the plain test run ignores them. CI
//! runs them on Mesa's lavapipe, a Vulkan device that runs on the CPU (docs/devices.md):
//!
//! ```text
//! scripts/install-vulkan-sw.sh
//! cargo build --release --package exemplar-export     # the `export` binary beside `train`
//! EXEMPLAR_GPU_DEVICE=wgpu cargo test --release --package exemplar-train-cli \
//!     --features exemplar-train/wgpu --test gpu_path -- --ignored --nocapture
//! ```
//!
//! On an NVIDIA GPU the same tests run with `--features exemplar-train/cuda` and
//! `EXEMPLAR_GPU_DEVICE=cuda:0`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{losses, run, stderr, stdout};
use exemplar_models::heads::projection::ProjectionKind;
use exemplar_models::{
    Classifier, ClassifierConfig, Depth, Detector, DetectorConfig, Encoder, EncoderConfig,
    LandmarkRegressor, LandmarkRegressorConfig, ResNetConfig, Segmenter, SegmenterConfig, Stem,
};

/// How far a device's pretraining loss may be from the CPU's at the same step, relative to the
/// loss (absolute for losses below 1).
///
/// The two runs start from the same weights, queue and batches (drawn on the CPU from one seed),
/// but their kernels add in other orders, so float32 rounding differs: about 1e-6 relative per
/// operation, which a forward and backward pass through a ResNet-18 and a few SGD steps grow to
/// about 1e-5 (lavapipe: at most 7.2e-6 over four steps). A wrong op or a wrong device move is
/// far outside this: Exemplar-v2's one change from MoCo v2, removing same-class negatives from
/// the queue, moves the losses of steps 2 to 4 by about 2% (4.174 against 4.259 at step 2).
const PRETRAIN_TOLERANCE: f64 = 1e-3;

/// The same for fine-tuning, looser because one head magnifies rounding: segmentation's
/// image-pooling branch batch-normalises one pooled value per image, and where a channel's 16
/// values nearly agree, dividing by the square root of their variance plus 1e-5 multiplies
/// their differences by up to about 300. The second step's loss then differs by up to 4.6e-4
/// (lavapipe) although every gradient of the step before agrees to 1e-5
/// ([`every_model_s_gradients_on_the_device_match_the_cpu`]). The other three tasks stay below
/// 5e-6.
const FINETUNE_TOLERANCE: f64 = 1e-2;

/// How far one parameter's gradient on the device may be from the CPU's, as the norm of the
/// difference over the norm of the CPU's gradient. float32 rounding gives about 1e-5, and up to
/// 7.2e-5 (lavapipe) for a bias whose gradient is a sum over a whole output map that partly
/// cancels; a wrong op's gradient is off by about its own size.
const GRADIENT_TOLERANCE: f32 = 1e-3;

/// The GPU device under test (`--device`), from `EXEMPLAR_GPU_DEVICE`.
fn device() -> String {
    std::env::var("EXEMPLAR_GPU_DEVICE").unwrap_or_else(|_| "wgpu".to_string())
}

/// The pipeline's pretraining configuration: a quarter-width ResNet-18 on 32 px crops, batches
/// of 64, a queue of 1024. Compiled in, so that the test's executable runs from anywhere.
const PIPELINE_CONFIG: &str = include_str!("../../configs/cpu-quick.toml");

/// The workspace binary `name`: in `EXEMPLAR_BIN_DIR` where that is set (the GPU benchmark
/// carries the test's executable and the binaries to another machine), else the one cargo built
/// beside `train`. Only `train` needs the device's feature: `export` runs no device code.
fn binary(name: &str) -> Command {
    let path = match std::env::var_os("EXEMPLAR_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(env!("CARGO_BIN_EXE_train")).with_file_name(name),
    };
    assert!(
        path.exists(),
        "{} is missing: build it (cargo build --release --workspace --bins)",
        path.display()
    );
    Command::new(path)
}

fn train() -> Command {
    binary("train")
}

/// The pipeline's configuration (configs/cpu-quick.toml) on a smaller split, logged at every
/// step.
fn pretrain(method: &str, device: &str, max_steps: usize, out: &Path) {
    let config = out.with_extension("toml");
    std::fs::write(&config, PIPELINE_CONFIG).expect("the configuration is written");
    succeed(
        train()
            .args(["pretrain", "--method", method, "--config"])
            .arg(config)
            .args([
                "--synthetic-train-size",
                "512",
                "--synthetic-val-size",
                "64",
            ])
            .args(["--knn-bank-size", "512", "--log-every", "1"])
            .args(["--device", device])
            .args(["--max-steps", &max_steps.to_string(), "--out"])
            .arg(out),
    );
}

/// Continues the run in `out` on `device`, up to `max_steps`.
fn resume(device: &str, max_steps: usize, out: &Path) {
    let output = succeed(
        train()
            .args(["pretrain", "--resume", "--device", device])
            .args(["--max-steps", &max_steps.to_string(), "--out"])
            .arg(out),
    );
    let from = format!("steps {}..", max_steps / 2);
    assert!(stderr(&output).contains(&from), "{}", stderr(&output));
}

/// A whole fine-tuning of the backbone in `init` for `task`: one epoch of two steps of 16 images
/// at 32 px, evaluated before and after, and saved.
fn finetune(task: &str, init: &Path, device: &str, out: &Path) {
    succeed(
        train()
            .args(["finetune", "--task", task, "--init"])
            .arg(init)
            .args(["--image-size", "32", "--batch-size", "16", "--epochs", "1"])
            .args(["--synthetic-train-size", "32", "--synthetic-val-size", "16"])
            .args(["--log-every", "1"])
            .args(["--device", device, "--out"])
            .arg(out),
    );
}

fn succeed(command: &mut Command) -> std::process::Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        stderr(&output)
    );
    output
}

/// Prints the two runs' losses side by side and checks that they agree to `tolerance`.
fn assert_same_losses(what: &str, cpu: &Path, other: &Path, tolerance: f64) {
    let (expected, actual) = (losses(cpu), losses(other));
    println!("{what}\n  step  cpu        device     |difference|");
    let mut worst = 0.0f64;
    for ((step, x), (_, y)) in expected.iter().zip(&actual) {
        let relative = (x - y).abs() / x.abs().max(1.0);
        worst = worst.max(relative);
        println!("  {step:>4}  {x:<9.6}  {y:<9.6}  {:.2e}", (x - y).abs());
    }
    println!("  largest relative difference {worst:.2e} (tolerance {tolerance:.0e})");
    let steps = |l: &[(u64, f64)]| l.iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(steps(&expected), steps(&actual), "{what}: logged steps");
    assert!(!expected.is_empty(), "{what}: no losses logged");
    assert!(
        worst <= tolerance,
        "{what}: the device's losses left the CPU's"
    );
}

#[test]
#[ignore = "needs a GPU device (EXEMPLAR_GPU_DEVICE) and a build with its feature"]
fn training_on_the_device_matches_the_cpu_step_by_step() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);

    // Exemplar-v2: the CPU's four steps, against two on the device continued on the CPU from
    // the device's checkpoint, and two on the CPU continued on the device from the CPU's.
    pretrain("exemplar-v2", "cpu", 4, &path("cpu"));
    pretrain("exemplar-v2", &device, 2, &path("device-then-cpu"));
    resume("cpu", 4, &path("device-then-cpu"));
    pretrain("exemplar-v2", "cpu", 2, &path("cpu-then-device"));
    resume(&device, 4, &path("cpu-then-device"));
    assert_same_losses(
        &format!("exemplar-v2, steps 1-2 on {device}, 3-4 on the CPU from its checkpoint"),
        &path("cpu"),
        &path("device-then-cpu"),
        PRETRAIN_TOLERANCE,
    );
    assert_same_losses(
        &format!("exemplar-v2, steps 1-2 on the CPU, 3-4 on {device} from its checkpoint"),
        &path("cpu"),
        &path("cpu-then-device"),
        PRETRAIN_TOLERANCE,
    );

    // The supervised learner: the other training path.
    pretrain("supervised", "cpu", 2, &path("supervised-cpu"));
    pretrain("supervised", &device, 2, &path("supervised-device"));
    assert_same_losses(
        &format!("supervised, steps 1-2 on {device}"),
        &path("supervised-cpu"),
        &path("supervised-device"),
        PRETRAIN_TOLERANCE,
    );

    // Each task's fine-tuning of the backbone the device finished, on the device: detection and
    // segmentation resize bilinearly, landmarks and classification pool.
    let backbone = path("cpu-then-device");
    for task in ["detection", "segmentation", "landmarks", "classification"] {
        finetune(task, &backbone, "cpu", &path(&format!("{task}-cpu")));
        finetune(task, &backbone, &device, &path(&format!("{task}-device")));
        assert_same_losses(
            &format!("{task} fine-tuning, steps 1-2 on {device}"),
            &path(&format!("{task}-cpu")),
            &path(&format!("{task}-device")),
            FINETUNE_TOLERANCE,
        );
    }

    // The model trained on the device exports, and ONNX Runtime reproduces it.
    let output = succeed(
        binary("export")
            .arg("--checkpoint")
            .arg(path("detection-device"))
            .arg("--out")
            .arg(path("model")),
    );
    println!("export: {}", stdout(&output).trim());
    assert!(path("model/model.onnx").exists());
}

/// Every parameter's gradient at one batch on `device`, with `model`'s weights loaded into
/// `fresh`: the gradient of the sum of the outputs weighted by a fixed pattern.
fn gradients<M: Module, const D: usize>(
    model: &M,
    fresh: M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D>,
    images: &TensorData,
    device: &Device,
) -> Vec<Vec<f32>> {
    struct Grads<'a>(&'a burn::tensor::Gradients, Vec<Vec<f32>>);
    impl ModuleVisitor for Grads<'_> {
        fn visit_float<const K: usize>(&mut self, param: &Param<Tensor<K>>) {
            if let Some(grad) = param.val().grad(self.0) {
                self.1.push(grad.into_data().iter::<f32>().collect());
            }
        }
    }
    let model = fresh.load_record(model.clone().into_record());
    let out = forward(&model, Tensor::from_data(images.clone(), device));
    let shape = out.dims();
    let pattern = (0..shape.iter().product::<usize>())
        .map(|i| (i * 7919 % 13) as f32 / 12.0 + 0.5)
        .collect::<Vec<_>>();
    let weights = Tensor::<D>::from_data(TensorData::new(pattern, shape), device);
    let grads = (out * weights).sum().backward();
    let mut visitor = Grads(&grads, vec![]);
    model.visit(&mut visitor);
    visitor.1
}

/// Checks one model's gradients on the device against the CPU's, parameter by parameter, and
/// returns the largest relative difference (of the difference's norm to the gradient's).
fn compare_gradients<M: Module, const D: usize>(
    what: &str,
    init: impl Fn(&Device) -> M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D> + Copy,
    device: &Device,
) -> f32 {
    let cpu = Device::flex().autodiff();
    cpu.seed(3);
    let model = init(&cpu);
    let images = Tensor::<4>::random([16, 3, 32, 32], Distribution::Normal(0.0, 1.0), &cpu);
    let images = images.into_data();
    let expected = gradients(&model, init(&cpu), forward, &images, &cpu);
    let actual = gradients(&model, init(device), forward, &images, device);
    assert_eq!(
        expected.len(),
        actual.len(),
        "{what}: parameters with gradients"
    );
    let mut worst = 0.0f32;
    for (e, a) in expected.iter().zip(&actual) {
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        let diff = e.iter().zip(a).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
        worst = worst.max(diff.sqrt() / norm.max(f32::MIN_POSITIVE));
    }
    println!(
        "{what}: {} parameter gradients, largest relative difference {worst:.2e}",
        expected.len()
    );
    worst
}

/// One backward pass of every model the trainer trains, from the same weights and batch on the
/// CPU and on the device. Unlike a loss curve, this checks each op's gradient on its own: a
/// curve can drift for reasons of its own (see [`FINETUNE_TOLERANCE`]).
#[test]
#[ignore = "needs a GPU device (EXEMPLAR_GPU_DEVICE) and a build with its feature"]
fn every_model_s_gradients_on_the_device_match_the_cpu() {
    let device = exemplar_train::device::select(&device())
        .expect("the device")
        .autodiff();
    let backbone = ResNetConfig::new(Depth::ResNet18)
        .with_width(0.25)
        .with_stem(Stem::Small);
    let worst = [
        compare_gradients(
            "exemplar-v2 encoder (MLP head)",
            |d| {
                EncoderConfig {
                    backbone,
                    head: ProjectionKind::Mlp,
                    out_features: 128,
                }
                .init(d)
            },
            |m: &Encoder, x| m.forward(x),
            &device,
        ),
        compare_gradients(
            "detector",
            |d| {
                DetectorConfig {
                    backbone,
                    num_classes: 5,
                    channels: 16,
                }
                .init(d)
            },
            |m: &Detector, x| m.forward(x),
            &device,
        ),
        compare_gradients(
            "segmenter",
            |d| {
                let rates = SegmenterConfig::rates_for(4);
                SegmenterConfig {
                    backbone,
                    num_classes: 5,
                    channels: 16,
                    rates,
                }
                .init(d)
            },
            |m: &Segmenter, x| m.forward(x),
            &device,
        ),
        compare_gradients(
            "landmark regressor",
            |d| {
                LandmarkRegressorConfig {
                    backbone,
                    points: 5,
                    channels: 16,
                    image_size: 32,
                }
                .init(d)
            },
            |m: &LandmarkRegressor, x| m.forward(x),
            &device,
        ),
        compare_gradients(
            "classifier",
            |d| {
                ClassifierConfig {
                    backbone,
                    num_classes: 5,
                }
                .init(d)
            },
            |m: &Classifier, x| m.forward(x),
            &device,
        ),
    ];
    let worst = worst.into_iter().fold(0.0, f32::max);
    assert!(
        worst <= GRADIENT_TOLERANCE,
        "gradients differ by {worst:.2e}"
    );
}
