//! `serve`'s start-up errors. The service end to end (train → export → serve → every endpoint,
//! and bad requests) is tested in the workspace's `tests/serve.rs`, through the binaries.

use std::process::Command;

/// Runs `serve` as `command` sets it up: its exit code and what it wrote to stderr.
fn serve(set_up: impl FnOnce(&mut Command) -> &mut Command) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_serve"));
    let output = set_up(&mut command).output().expect("spawn serve");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn a_models_directory_without_models_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = serve(|c| c.arg("--models").arg(dir.path()));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("holds no exported models"), "{stderr}");
}

#[test]
fn a_missing_models_directory_and_a_bad_flag_are_clear_errors() {
    let (code, stderr) = serve(|c| c.args(["--models", "/nonexistent/models"]));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("/nonexistent/models"), "{stderr}");

    let (code, stderr) = serve(|c| c.args(["--models", ".", "--device", "tpu"]));
    assert_eq!(code, Some(2), "{stderr}");
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
    let addr = format!("127.0.0.1:{port}");
    let (code, stderr) = serve(|c| c.args(["--health-check", "--addr", &addr]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unhealthy: cannot connect"), "{stderr}");
}

#[test]
fn settings_come_from_the_environment_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    // EXEMPLAR_MODELS names the (empty) directory: the error proves it was read.
    let (_, stderr) = serve(|c| c.env("EXEMPLAR_MODELS", dir.path()));
    assert!(stderr.contains("holds no exported models"), "{stderr}");
    // A bad device from the environment, overridden by the flag…
    let (_, stderr) = serve(|c| {
        c.env("EXEMPLAR_MODELS", dir.path())
            .env("EXEMPLAR_DEVICE", "tpu")
            .args(["--device", "cpu"])
    });
    assert!(stderr.contains("holds no exported models"), "{stderr}");
    // … and on its own, a usage error.
    let (code, _) = serve(|c| {
        c.env("EXEMPLAR_MODELS", dir.path())
            .env("EXEMPLAR_DEVICE", "tpu")
    });
    assert_eq!(code, Some(2));
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
        let (code, stderr) = serve(|c| c.arg("--models").arg(dir.path()).args(args));
        assert_ne!(code, Some(0), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
