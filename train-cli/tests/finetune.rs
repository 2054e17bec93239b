//! `train finetune` and `train eval <task>` end to end: every task on the built-in data, from a
//! pretraining run, from the real-format fixtures, stopped and resumed, and with bad input.

mod common;

use std::path::{Path, PathBuf};

use exemplar_train::config::BackboneFlags;
use exemplar_train::finetune::TaskKind;
use exemplar_train::finetune::config::{FinetuneConfig, FinetuneFlags};

use common::{TINY, assert_clean_failure, run, stderr, stdout, train};

/// A tiny fine-tuning: a sixteenth-width ResNet-18 on 32 px images, 4 steps of 16.
const TINY_FINETUNE: &[&str] = &[
    "--arch",
    "resnet18",
    "--width",
    "0.0625",
    "--stem",
    "small",
    "--image-size",
    "32",
    "--head-channels",
    "8",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--synthetic-train-size",
    "64",
    "--synthetic-val-size",
    "32",
    "--log-every",
    "2",
];

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/tests/data/formats")
        .join(path)
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The `eval` entries of `metrics.jsonl` (before and after fine-tuning).
fn evaluations(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("eval").is_some())
        .collect()
}

#[test]
fn every_task_finetunes_and_evaluates_on_the_built_in_data() {
    let dir = tempfile::tempdir().unwrap();
    for (task, metric) in [
        ("detection", "voc07_map50"),
        ("segmentation", "miou"),
        ("landmarks", "nme_percent"),
        ("classification", "top1"),
    ] {
        let out = dir.path().join(task);
        let output = run(train()
            .args(["finetune", "--task", task])
            .args(TINY_FINETUNE)
            .arg("--out")
            .arg(&out));
        assert!(output.status.success(), "{task}: {}", stderr(&output));
        assert!(
            stdout(&output).contains(&format!("{task}: 4 steps")),
            "{}",
            stdout(&output)
        );

        // The model, its card and the evaluation are there and agree.
        assert!(out.join("model.bpk").is_file());
        let card = exemplar_inference::ModelCard::read(&out.join("model.json")).unwrap();
        assert_eq!(card.task.name(), task);
        assert_eq!((card.input.width, card.input.height), (32, 32));
        assert!(out.join("checkpoints/step-00000004/model.json").is_file());
        let evals = evaluations(&out);
        assert_eq!(evals.len(), 2, "{evals:?}");
        assert_eq!(
            (evals[0]["eval"].as_str(), evals[1]["eval"].as_str()),
            (Some("before"), Some("after"))
        );
        let after = evals[1][metric].as_f64().expect("metric");
        assert!(after.is_finite());
        let result = json(&out.join(format!("eval/{task}.json")));
        assert_eq!(result["kind"], task);

        // `train eval <task>` reproduces the run's final number from the saved model.
        std::fs::remove_file(out.join(format!("eval/{task}.json"))).unwrap();
        let output = run(train().args(["eval", task, "--run"]).arg(&out));
        assert!(output.status.success(), "{task}: {}", stderr(&output));
        assert!(
            stdout(&output).starts_with(&format!("{task}: ")),
            "{}",
            stdout(&output)
        );
        if task == "detection" {
            // The false positives' types (eval/detection_errors.rs) come with the AP.
            assert!(
                stdout(&output).contains("% localisation, "),
                "{}",
                stdout(&output)
            );
            let errors = &result["result"]["errors"];
            assert!(errors["examined"].as_u64().is_some(), "{result}");
        }
        let again = json(&out.join(format!("eval/{task}.json")));
        assert_eq!(again["data"], result["data"]);
        assert_eq!(
            again["result"], result["result"],
            "{task}: evaluation is not repeatable"
        );
    }
    // Evaluating a run as another task says what it is.
    let output = run(train()
        .args(["eval", "landmarks", "--run"])
        .arg(dir.path().join("detection")));
    assert_clean_failure(&output, "is a detection run: use `train eval detection`");
}

#[test]
fn a_pretraining_run_initialises_the_backbone_and_fixes_the_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let pretrained = dir.path().join("pretrain");
    let output = run(train()
        .args(["pretrain", "--epochs", "1", "--max-steps", "2", "--out"])
        .arg(&pretrained)
        .args(TINY));
    assert!(output.status.success(), "{}", stderr(&output));

    let out = dir.path().join("seg");
    let output = run(train()
        .args(["finetune", "--task", "segmentation", "--init"])
        .arg(&pretrained)
        .args([
            "--image-size",
            "32",
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--head-channels",
            "8",
        ])
        .args([
            "--synthetic-train-size",
            "32",
            "--synthetic-val-size",
            "16",
            "--freeze-bn",
        ])
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    // TINY pretrains at width 0.125: the card, not the fine-tuning default (0.25), decides.
    assert!(config.contains("width = 0.125"), "{config}");
    assert!(config.contains("freeze_bn = true"), "{config}");
    let card = exemplar_inference::ModelCard::read(&out.join("model.json")).unwrap();
    assert!(
        card.provenance.init.starts_with("exemplar-v2"),
        "{:?}",
        card.provenance
    );
    assert!(card.provenance.backbone.contains("width 0.125"));

    let output = run(train()
        .args([
            "finetune",
            "--task",
            "landmarks",
            "--width",
            "0.5",
            "--init",
        ])
        .arg(&pretrained));
    assert_clean_failure(&output, "--width conflict with --init");
}

#[test]
fn real_formats_fine_tune_from_their_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    for (task, data) in [
        (
            "detection",
            format!("voc:{}", fixture("voc/VOC2007").display()),
        ),
        ("detection", format!("coco:{}", fixture("coco").display())),
        (
            "segmentation",
            format!("voc:{}", fixture("voc/VOC2007").display()),
        ),
        (
            "segmentation",
            format!("cityscapes:{}", fixture("cityscapes").display()),
        ),
        (
            "segmentation",
            format!("coco:{}", fixture("coco").display()),
        ),
        (
            "landmarks",
            format!("celeba:{}", fixture("celeba").display()),
        ),
        ("landmarks", format!("pts:{}", fixture("300w").display())),
    ] {
        let out = dir
            .path()
            .join(format!("{task}-{}", data.split(':').next().unwrap()));
        let output = run(train()
            .args(["finetune", "--task", task, "--data", &data])
            .args(TINY_FINETUNE)
            .args(["--batch-size", "1"])
            .arg("--out")
            .arg(&out));
        assert!(
            output.status.success(),
            "{task} on {data}: {}",
            stderr(&output)
        );
        let card = exemplar_inference::ModelCard::read(&out.join("model.json")).unwrap();
        assert!(!card.class_names.is_empty());
    }
    // VOC's 20 classes reach the card; the box reaching outside its image was reported.
    let card =
        exemplar_inference::ModelCard::read(&dir.path().join("detection-voc/model.json")).unwrap();
    assert_eq!(card.class_names.len(), 20);
}

#[test]
fn stopping_and_resuming_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, split) = (dir.path().join("straight"), dir.path().join("split"));
    let base = ["finetune", "--task", "segmentation"];
    let output = run(train()
        .args(base)
        .args(TINY_FINETUNE)
        .args(["--epochs", "2", "--out"])
        .arg(&straight));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(train()
        .args(base)
        .args(TINY_FINETUNE)
        .args(["--epochs", "2", "--max-steps", "3", "--out"])
        .arg(&split));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("stopped at step 3 of 8"),
        "{}",
        stdout(&output)
    );
    assert!(!split.join("model.bpk").exists());

    let output = run(train().args(["finetune", "--resume", "--out"]).arg(&split));
    assert!(output.status.success(), "{}", stderr(&output));
    let (a, b) = (
        json(&straight.join("eval/segmentation.json")),
        json(&split.join("eval/segmentation.json")),
    );
    let (x, y) = (
        a["result"]["miou"].as_f64().unwrap(),
        b["result"]["miou"].as_f64().unwrap(),
    );
    assert!(
        (x - y).abs() < 1e-6,
        "resumed mIoU {y} vs uninterrupted {x}"
    );

    let output = run(train()
        .args(["finetune", "--resume", "--lr", "0.5", "--out"])
        .arg(&split));
    assert_clean_failure(&output, "these flags would change it: --lr");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run(train().args(["finetune", "--out"]).arg(&out));
    assert_clean_failure(&output, "--task is required");
    let output = run(train().args(["finetune", "--task", "boxes"]));
    assert_clean_failure(&output, "invalid value 'boxes'");
    let output = run(train().args(["finetune", "--task", "detection", "--init", "imagenet"]));
    assert_clean_failure(&output, "unknown initialisation 'imagenet'");
    let output = run(train().args(["finetune", "--task", "detection", "--init", "missing.pth"]));
    assert_clean_failure(&output, "missing.pth: no such file");
    let output = run(train().args([
        "finetune",
        "--task",
        "detection",
        "--backbone-lr-scale",
        "2",
    ]));
    assert_clean_failure(&output, "--backbone-lr-scale must lie in [0, 1]");
    let output = run(train().args([
        "finetune",
        "--task",
        "detection",
        "--data",
        "synthetic-faces",
    ]));
    assert_clean_failure(&output, "cannot be used for detection");
    let output = run(train()
        .args(["finetune", "--task", "detection", "--data"])
        .arg(format!("voc:{}", dir.path().display())));
    assert_clean_failure(&output, "trainval.txt");
    let output = run(train()
        .args(["finetune", "--task", "segmentation", "--batch-size", "64"])
        .args(["--synthetic-train-size", "10", "--out"])
        .arg(&out));
    assert_clean_failure(&output, "fewer than one batch of 64");
    let output = run(train().args(["eval", "detection", "--run"]).arg(dir.path()));
    assert_clean_failure(&output, "not a fine-tuning run directory");
}

#[test]
fn a_config_file_sits_between_the_defaults_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("landmarks.toml");
    std::fs::write(
        &path,
        "task = \"landmarks\"\nepochs = 3\nbatch_size = 8\n[synthetic]\ntrain_size = 40\n",
    )
    .unwrap();
    let flags = FinetuneFlags {
        backbone: BackboneFlags {
            epochs: Some(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let config = flags.resolve(Some(&path)).unwrap();
    assert_eq!(config.task, TaskKind::Landmarks);
    assert_eq!((config.epochs, config.batch_size), (5, 8));
    assert_eq!(config.synthetic.train_size, 40);
    let defaults = FinetuneConfig::defaults(TaskKind::Landmarks);
    assert_eq!(config.synthetic.val_size, defaults.synthetic.val_size);
    // The flag's task wins over the file's.
    let flags = FinetuneFlags {
        task: Some(TaskKind::Detection),
        ..Default::default()
    };
    assert_eq!(
        flags.resolve(Some(&path)).unwrap().task,
        TaskKind::Detection
    );
    // The saved form reads back.
    let saved = dir.path().join("config.toml");
    std::fs::write(&saved, config.to_toml()).unwrap();
    assert_eq!(FinetuneConfig::load(&saved).unwrap().epochs, 5);
}

#[test]
fn config_file_mistakes_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "task = \"detection\"\nepoch = 3\n").unwrap();
    let err = FinetuneFlags::default()
        .resolve(Some(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml") && err.contains("epoch"), "{err}");
    std::fs::write(&path, "task = \"captioning\"\n").unwrap();
    let err = FinetuneFlags::default()
        .resolve(Some(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("task"), "{err}");
    std::fs::write(&path, "epochs = 3\n").unwrap();
    let err = FinetuneFlags::default()
        .resolve(Some(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--task is required"), "{err}");
}
