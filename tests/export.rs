//! Every kind of model `train` produces exports to ONNX, and ONNX Runtime reproduces burn's
//! output (the parity check inside `export`); backbones export to torchvision-named SafeTensors
//! and come back identical through `--init`. Needs the ONNX Runtime library:
//! `scripts/install-onnxruntime.sh` (the README's test command runs it first).

use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor};
use exemplar_export::ExportOptions;
use exemplar_export::datatype::input_datatype;
use exemplar_inference::{InputDatatype, TaskSpec};
use exemplar_models::card::load_backbone;
use exemplar_models::{Depth, Network, ResNet, Stem};
use exemplar_tests::binary;
use exemplar_train::config::{Method, PretrainConfig};
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::config::Init;
use exemplar_train::finetune::init::initial_backbone;
use exemplar_train::finetune::{self, TaskKind};

/// A tiny fine-tuning run of `task` in `dir`.
fn finetuned(task: TaskKind, dir: &Path) {
    finetuned_with_stem(task, Stem::Small, dir);
}

/// The same with the given stem.
fn finetuned_with_stem(task: TaskKind, stem: Stem, dir: &Path) {
    let mut config = FinetuneConfig::defaults(task);
    config.stem = stem;
    config.width = 0.0625;
    config.image_size = 32;
    config.head_channels = 8;
    config.batch_size = 16;
    config.epochs = 1;
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 16;
    let result = exemplar_train::with_task!(task, T => finetune::finetune::<T>(config, dir, false));
    result.unwrap_or_else(|e| panic!("{task}: {e}"));
}

fn pretrained(dir: &Path) {
    let mut config = PretrainConfig::defaults(Method::ExemplarV2);
    config.arch = Depth::ResNet18;
    config.width = 0.0625;
    config.stem = Stem::Small;
    config.image_size = 16;
    config.batch_size = 16;
    config.queue_size = 64;
    config.epochs = 1;
    config.max_steps = Some(2);
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 16;
    config.knn_k = 5;
    exemplar_train::pretrain::pretrain(&config, dir, false).expect("pretraining");
}

#[test]
fn every_model_kind_exports_and_matches_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = Vec::new();
    for task in [
        TaskKind::Detection,
        TaskKind::Segmentation,
        TaskKind::Landmarks,
        TaskKind::Classification,
    ] {
        let run = dir.path().join(task.name());
        finetuned(task, &run);
        sources.push((task.name().to_string(), run));
    }
    // DeepLabv3 on the ImageNet stem dilates the last stage (output stride 16).
    let dilated = dir.path().join("segmentation-imagenet-stem");
    finetuned_with_stem(TaskKind::Segmentation, Stem::ImageNet, &dilated);
    let saved = FinetuneConfig::load(&dilated.join("config.toml")).unwrap();
    assert!(saved.backbone_config().dilate_last_stage);
    sources.push(("segmentation".to_string(), dilated));
    let backbone = dir.path().join("pretrain");
    pretrained(&backbone);
    sources.push(("embedding".to_string(), backbone));
    // A checkpoint inside a run exports too.
    sources.push((
        "detection".to_string(),
        dir.path().join("detection/checkpoints/step-00000002"),
    ));

    // Every kind exports with each input datatype; the parity check feeds ONNX Runtime that
    // datatype and burn the same images as FP32.
    let exports = sources
        .iter()
        .flat_map(|source| InputDatatype::ALL.map(|datatype| (source, datatype)));
    for (i, ((task, source), datatype)) in exports.enumerate() {
        let out = dir.path().join(format!("export-{i}"));
        let options = ExportOptions {
            parity_batch: 3,
            input_datatype: datatype,
        };
        let report = exemplar_export::export_with(source, &out, &options)
            .unwrap_or_else(|e| panic!("{} ({datatype}): {e}", source.display()));
        assert_eq!(&report.task, task);
        assert!(report.parity.relative <= exemplar_export::parity::TOLERANCE);
        assert_eq!(report.parity.batch, 3);
        let bytes = std::fs::read(out.join("model.onnx")).unwrap();
        assert_eq!(bytes.len(), report.bytes);
        let card = exemplar_export::read_card(&out).unwrap();
        assert_eq!(card.task.name(), task);
        assert_eq!(card.input.datatype, datatype);
        assert_eq!(input_datatype(&bytes, "images"), Some(datatype));
        // The graph's tensors carry the card's meaningful names, and the batch axis is free.
        assert_eq!(report.parity.input_name, "images");
        let outputs: &[&str] = match card.task {
            TaskSpec::Embedding { .. } => &["embedding"],
            TaskSpec::Classification | TaskSpec::Segmentation { .. } => &["logits"],
            TaskSpec::Detection(_) => &["heatmaps", "offsets", "sizes"],
            TaskSpec::Landmarks { .. } => &["points"],
        };
        assert_eq!(report.parity.output_names, outputs);
        assert_eq!(card.input.name, report.parity.input_name);
        let card_outputs: Vec<&str> = card.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(card_outputs, report.parity.output_names);
        assert_eq!(card.outputs[0].shape[0], "batch");
        if let TaskSpec::Embedding { dim } = card.task {
            assert_eq!(dim, 32);
        }
    }
}

#[test]
fn a_missing_runtime_is_a_clear_error() {
    // Flag errors and sources without a model are tested in export/tests/cli.rs.
    let dir = tempfile::tempdir().unwrap();
    let export = || binary("export");
    let run = dir.path().join("landmarks");
    finetuned(TaskKind::Landmarks, &run);
    let output = export()
        .env("ORT_DYLIB_PATH", dir.path().join("libonnxruntime.so"))
        .args(["--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ORT_DYLIB_PATH=") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out/model.onnx").exists(),
        "nothing is written before parity"
    );
}

/// The pooled features of `backbone` on a fixed random batch.
fn features(backbone: &ResNet, device: &Device) -> Vec<f32> {
    device.seed(7);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
    backbone.forward(x).into_data().iter::<f32>().collect()
}

/// Exports the backbone of `source` with `export --format torchvision` and reads it back through
/// fine-tuning's `--init FILE` path, configured from the card beside it.
fn through_torchvision(source: &Path, out: &Path, task: TaskKind, device: &Device) -> ResNet {
    let output = binary("export")
        .args(["--format", "torchvision", "--checkpoint"])
        .arg(source)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("torchvision key names"), "{stdout}");
    let card: exemplar_models::card::BackboneCard =
        serde_json::from_slice(&std::fs::read(out.join("backbone.json")).unwrap()).unwrap();
    let mut config = FinetuneConfig::defaults(task);
    config.arch = card.backbone.depth;
    config.width = card.backbone.width;
    config.stem = card.backbone.stem;
    config.init = Init::PyTorch(out.join("backbone.safetensors"));
    initial_backbone(&mut config, device).unwrap()
}

#[test]
fn backbones_round_trip_through_torchvision_safetensors() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    // A pretraining run's backbone.
    let run = dir.path().join("pretrain");
    pretrained(&run);
    let (original, _) = load_backbone(&run, &device).unwrap();
    let out = dir.path().join("torchvision-pretrain");
    let imported = through_torchvision(&run, &out, TaskKind::Classification, &device);
    let names = String::from_utf8_lossy(&std::fs::read(out.join("backbone.safetensors")).unwrap())
        .into_owned();
    assert!(
        names.contains("\"layer2.0.downsample.1.running_var\""),
        "torchvision names"
    );
    assert_eq!(features(&original, &device), features(&imported, &device));

    // A fine-tuned model's backbone (here a trained detector's).
    let run = dir.path().join("detection");
    finetuned(TaskKind::Detection, &run);
    let (network, _) = Network::load(&run, &device).unwrap();
    let Network::Detector(detector) = network else {
        panic!("a detection run holds a detector")
    };
    let out = dir.path().join("torchvision-detection");
    let imported = through_torchvision(&run, &out, TaskKind::Detection, &device);
    assert_eq!(
        features(&detector.backbone, &device),
        features(&imported, &device)
    );

    // Not a run: a clear error, nothing written.
    let output = binary("export")
        .args(["--format", "torchvision", "--checkpoint"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("neither a fine-tuning run"), "{stderr}");
    assert!(!dir.path().join("nothing/backbone.safetensors").exists());
}
