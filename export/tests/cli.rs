//! `export`'s command-line errors, before any model is read. Exports of trained models (every
//! task, ONNX Runtime parity, torchvision weights) are tested in the workspace's
//! `tests/export.rs`, through the binaries.
//!
//! These tests also make `cargo test --workspace` build the `export` binary: cargo builds a
//! package's binaries only for that package's own integration tests.

use std::process::Command;

fn export() -> Command {
    Command::new(env!("CARGO_BIN_EXE_export"))
}

#[test]
fn a_directory_without_a_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = export()
        .arg("--checkpoint")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("neither a fine-tuning run"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_missing_directory_and_bad_flags_are_clear_errors() {
    let output = export()
        .args([
            "--checkpoint",
            "/nonexistent/run",
            "--out",
            "/nonexistent/out",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/run"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Each bad command line is refused by the parser (exit 2), naming what was wrong.
    for (args, named) in [
        (
            &["--checkpoint", ".", "--out", "o", "--format", "pickle"][..],
            "possible values: onnx, torchvision",
        ),
        (
            &["--checkpoint", ".", "--out", "o", "--parity-batch", "two"][..],
            "'two'",
        ),
        (&["--out", "o"][..], "--checkpoint <DIR>"),
        (
            &[
                "--checkpoint",
                ".",
                "--out",
                "o",
                "--input-datatype",
                "int4",
            ][..],
            "possible values: fp32, fp16, uint8",
        ),
        (
            &[
                "--checkpoint",
                ".",
                "--out",
                "o",
                "--format",
                "torchvision",
                "--input-datatype",
                "uint8",
            ][..],
            "--input-datatype applies to ONNX exports",
        ),
    ] {
        let output = export().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
