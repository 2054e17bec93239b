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

#[test]
fn the_health_check_fails_when_nothing_listens() {
    // Bind a port, then free it: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--health-check", "--addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unhealthy: cannot connect"), "{stderr}");
}

#[test]
fn settings_come_from_the_environment_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    // EXEMPLAR_MODELS names the (empty) directory: the error proves it was read.
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .env("EXEMPLAR_MODELS", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no exported models"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .env("EXEMPLAR_MODELS", dir.path())
        .env("EXEMPLAR_DEVICE", "tpu")
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no exported models"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .env("EXEMPLAR_MODELS", dir.path())
        .env("EXEMPLAR_DEVICE", "tpu")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn bad_access_control_flags_are_clear_errors() {
    for (args, named) in [
        (&["--rate-limit", "0"][..], "--rate-limit"),
        (&["--rate-burst", "5"][..], "--rate-limit"),
        (&["--tls-cert", "cert.pem"][..], "--tls-key"),
        (
            &["--cors-origin", "https://a\nb.example"][..],
            "not a header value",
        ),
        (&["--api-key", ""][..], "--api-key is empty"),
        (&["--otlp-endpoint", "not a url"][..], "--otlp-endpoint"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_serve"))
            .arg("--models")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
