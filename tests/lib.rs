//! End-to-end tests of the workspace's binaries, run as a user would run them.
//!
//! The binaries are found beside the test executable (`target/<profile>/`), where
//! `cargo test --workspace` builds them.

use std::path::PathBuf;
use std::process::Command;

/// A command for the workspace binary `name` (`train`, `export`, `serve`).
///
/// # Panics
/// If the binary has not been built (run the tests with `cargo test --workspace`).
pub fn binary(name: &str) -> Command {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path: PathBuf = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    Command::new(path)
}
