//! `serve`'s start-up errors. The service end to end (train → export → serve → every endpoint,
//! and bad requests) is tested in the workspace's `tests/serve.rs`, through the binaries.

use std::process::Command;

#[test]
fn a_models_directory_without_models_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--models")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("holds no exported models"), "{stderr}");
}

#[test]
fn a_missing_models_directory_and_a_bad_flag_are_clear_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--models", "/nonexistent/models"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/nonexistent/models"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--models", ".", "--device", "tpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tpu"), "{stderr}");
}
