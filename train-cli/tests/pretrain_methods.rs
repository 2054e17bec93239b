//! Every method pretrains on the built-in data, learns, and leaves a usable backbone behind.

mod common;

use common::{TINY, knn_top1, losses, run, stderr, train};

fn pretrain(method: &str, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(method);
    let output = run(train()
        .args(["pretrain", "--method", method])
        .args(TINY)
        .args(extra)
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{method}: {}", stderr(&output));
    (dir, out)
}

/// Logged loss windows (16 steps each with TINY's `--log-every`).
fn loss_windows(run: &std::path::Path) -> Vec<f64> {
    let values: Vec<f64> = losses(run).into_iter().map(|e| e.1).collect();
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    values
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn every_method_trains_and_saves_a_backbone() {
    for method in [
        "exemplar-v2",
        "exemplar-v1",
        "moco-v2",
        "moco-v1",
        "supervised",
    ] {
        let (_dir, out) = pretrain(method, &["--epochs", "2"]);
        let card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("backbone.json")).unwrap())
                .unwrap();
        assert_eq!(card["method"], method);
        assert_eq!(card["steps"], 32);
        let top1 = knn_top1(&out);
        assert!((0.0..=1.0).contains(&top1));
        let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("method = \"{method}\"")),
            "{config}"
        );
    }
}

/// The kNN accuracy a run logged at initialisation (runs with `--knn-every`).
fn initial_knn(run: &std::path::Path) -> f64 {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["step"] == 0)
        .and_then(|v| v["knn_top1"].as_f64())
        .expect("kNN at step 0")
}

#[test]
fn supervised_loss_falls_and_knn_beats_the_untrained_network() {
    // 16 px is too small to tell the shapes apart; 24 px is enough.
    let extra = [
        "--image-size",
        "24",
        "--synthetic-train-size",
        "2048",
        "--epochs",
        "6",
        "--lr",
        "0.4",
        "--knn-every",
        "100000",
    ];
    let (_dir, out) = pretrain("supervised", &extra);
    let windows = loss_windows(&out);
    let (early, late) = (windows[0], mean(&windows[windows.len() - 3..]));
    assert!(late < early * 0.8, "loss {early} -> {late}: {windows:?}");
    let (before, after) = (initial_knn(&out), knn_top1(&out));
    assert!(after > before + 0.15, "kNN top-1 {before} -> {after}");
}

#[test]
fn exemplar_loss_falls_once_the_queue_is_full() {
    // The first window is easier than any later one: the queue still holds random keys, which
    // are poor negatives. After that the loss must fall.
    let (_dir, out) = pretrain("exemplar-v2", &["--epochs", "12", "--lr", "0.4"]);
    let windows = loss_windows(&out);
    let (early, late) = (mean(&windows[1..3]), mean(&windows[windows.len() - 3..]));
    assert!(late < early - 0.1, "loss {early} -> {late}: {windows:?}");
}
