//! The user's path through the trainer: pretrain on the built-in data, then evaluate the saved
//! backbone with the kNN monitor and the linear probe, each writing its JSON result; and the
//! transfer chain: pretrain, fine-tune, evaluate the fine-tuned model.

use exemplar_tests::{binary, succeed};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("result file")).expect("json")
}

#[test]
fn pretrain_then_evaluate_with_knn_and_linear_probe() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = succeed(
        binary("train")
            .args(["pretrain", "--method", "exemplar-v2", "--arch", "resnet18"])
            .args(["--width", "0.125", "--stem", "small", "--image-size", "16"])
            .args(["--batch-size", "32", "--queue-size", "128", "--epochs", "2"])
            .args([
                "--synthetic-train-size",
                "256",
                "--synthetic-val-size",
                "100",
            ])
            .args(["--knn-k", "10", "--out"])
            .arg(&run),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("exemplar-v2: 16 steps"), "{stdout}");

    let monitor = json(&run.join("eval/knn.json"));
    let output = succeed(
        binary("train")
            .args(["eval", "knn", "--k", "10", "--run"])
            .arg(&run),
    );
    let line = String::from_utf8_lossy(&output.stdout);
    assert!(line.starts_with("kNN top-1 "), "{line}");
    let knn = json(&run.join("eval/knn.json"));
    assert_eq!(knn["result"]["queries"], 100);
    // The standalone evaluation agrees with the monitor the run itself recorded.
    assert_eq!(knn["result"]["top1"], monitor["result"]["top1"]);

    let linear_json = dir.path().join("linear.json");
    let output = succeed(
        binary("train")
            .args(["eval", "linear", "--epochs", "5", "--run"])
            .arg(&run)
            .arg("--json")
            .arg(&linear_json),
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("linear probe top-1 "));
    let linear = json(&linear_json);
    let top1 = linear["result"]["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1));
    assert_eq!(linear["result"]["val_size"], 100);
}

/// The transfer chain of docs/transfer.md: pretrain, fine-tune a detector on the backbone, evaluate
/// it again from the saved model, whose card says how to read its output.
#[test]
fn pretrain_then_finetune_a_detector_then_evaluate_it() {
    let dir = tempfile::tempdir().unwrap();
    let (pretrained, detector) = (dir.path().join("pre"), dir.path().join("det"));
    let tiny = ["--synthetic-train-size", "64", "--synthetic-val-size", "32"];
    let tiny = [tiny.as_slice(), &["--batch-size", "16", "--epochs", "1"]].concat();
    succeed(
        binary("train")
            .args(["pretrain", "--arch", "resnet18", "--width", "0.0625"])
            .args([
                "--stem",
                "small",
                "--image-size",
                "16",
                "--queue-size",
                "64",
            ])
            .args(&tiny)
            .arg("--out")
            .arg(&pretrained),
    );
    succeed(
        binary("train")
            .args(["finetune", "--task", "detection", "--init"])
            .arg(&pretrained)
            .args(["--image-size", "32", "--head-channels", "8"])
            .args(&tiny)
            .arg("--out")
            .arg(&detector),
    );
    let card = exemplar_inference::ModelCard::read(&detector.join("model.json")).unwrap();
    let exemplar_inference::TaskSpec::Detection(decoding) = &card.task else {
        panic!("not a detection card: {card:?}");
    };
    assert_eq!(decoding.stride, 2);
    assert_eq!(card.class_names.len(), 10);
    let shapes: Vec<_> = card.outputs.iter().map(|o| (&o.name, &o.shape)).collect();
    let cells = |c: &str| vec!["batch".to_string(), c.into(), "16".into(), "16".into()];
    let expected = [
        ("heatmaps".to_string(), cells("10")),
        ("offsets".to_string(), cells("2")),
        ("sizes".to_string(), cells("2")),
    ];
    assert_eq!(
        shapes,
        expected.iter().map(|(n, s)| (n, s)).collect::<Vec<_>>()
    );

    let output = succeed(
        binary("train")
            .args(["eval", "detection", "--run"])
            .arg(&detector),
    );
    let line = String::from_utf8_lossy(&output.stdout);
    assert!(line.starts_with("detection: VOC07 mAP50 "), "{line}");
    let result = json(&detector.join("eval/detection.json"));
    assert_eq!(result["result"]["images"], 32);
}
