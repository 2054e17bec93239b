//! Helpers shared by the `train` binary's tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `train` binary built for this test run.
pub fn train() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train"))
}

/// Flags for a tiny, fast run on the built-in data: an eighth-width ResNet-18 on 16 px crops.
pub const TINY: &[&str] = &[
    "--arch",
    "resnet18",
    "--width",
    "0.125",
    "--stem",
    "small",
    "--image-size",
    "16",
    "--batch-size",
    "32",
    "--queue-size",
    "128",
    "--key-momentum",
    "0.99",
    "--synthetic-train-size",
    "512",
    "--synthetic-val-size",
    "200",
    "--knn-k",
    "10",
    "--workers",
    "2",
    "--log-every",
    "5",
];

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the train binary runs");
    if std::env::var_os("EXEMPLAR_TEST_VERBOSE").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output
}

/// The command failed with `expected` in its message, and did not panic.
pub fn assert_clean_failure(output: &Output, expected: &str) {
    let err = stderr(output);
    assert!(!output.status.success(), "should fail: {err}");
    assert!(err.contains(expected), "expected '{expected}' in: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `metrics.jsonl` entries of a run that carry a loss.
pub fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| Some((v["step"].as_u64()?, v.get("loss")?.as_f64()?)))
        .collect()
}

/// The final kNN accuracy a run recorded.
pub fn knn_top1(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("eval/knn.json")).expect("eval/knn.json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["result"]["top1"].as_f64().expect("top1")
}
