//! Crash-safe checkpoints (single files go through [`atomic_write`]).
//!
//! A checkpoint is a directory `RUN/checkpoints/step-00001234/` holding named blobs (model and
//! optimizer records, the key queue, the loop state). It is assembled under a temporary name and
//! renamed as a whole; `RUN/checkpoints/latest` names the newest complete one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use exemplar_models::store::sync_dir;
// One crash-safe writer for every file of the workspace; it lives beside the model files.
pub use exemplar_models::store::atomic_write;

fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

fn step_dir_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// Writes a checkpoint of `files` for `step`, points `latest` at it and deletes all but the
/// newest `keep` checkpoints. Returns the checkpoint's directory.
pub fn write_checkpoint(
    run: &Path,
    step: usize,
    files: &[(&str, &[u8])],
    keep: usize,
) -> std::io::Result<PathBuf> {
    let root = checkpoints_dir(run);
    fs::create_dir_all(&root)?;
    let name = step_dir_name(step);
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    for (file_name, bytes) in files {
        let mut file = File::create(tmp.join(file_name))?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    sync_dir(&tmp);
    let target = root.join(&name);
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    fs::rename(&tmp, &target)?;
    sync_dir(&root);
    atomic_write(&root.join("latest"), name.as_bytes())?;
    prune(&root, keep.max(1))?;
    Ok(target)
}

/// Complete checkpoints, oldest first.
fn list(root: &Path) -> std::io::Result<Vec<(usize, PathBuf)>> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(found);
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn prune(root: &Path, keep: usize) -> std::io::Result<()> {
    let all = list(root)?;
    for (_, path) in all.iter().take(all.len().saturating_sub(keep)) {
        fs::remove_dir_all(path)?;
    }
    // Leftovers of a writer that was killed mid-checkpoint.
    for entry in fs::read_dir(root)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".step-") && !name.ends_with(&format!("-{}", std::process::id())) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// The newest complete checkpoint of a run, if any.
pub fn latest_checkpoint(run: &Path) -> std::io::Result<Option<(usize, PathBuf)>> {
    let root = checkpoints_dir(run);
    if let Ok(name) = fs::read_to_string(root.join("latest")) {
        let name = name.trim();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            let dir = root.join(name);
            if dir.is_dir() {
                return Ok(Some((step, dir)));
            }
        }
    }
    Ok(list(&root)?.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_complete_latest_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        assert!(latest_checkpoint(run).unwrap().is_none());
        for step in [10, 20, 30] {
            let body = step.to_string();
            write_checkpoint(
                run,
                step,
                &[("a.bin", body.as_bytes()), ("b.json", b"{}")],
                2,
            )
            .unwrap();
        }
        let (step, path) = latest_checkpoint(run).unwrap().unwrap();
        assert_eq!(step, 30);
        assert_eq!(fs::read_to_string(path.join("a.bin")).unwrap(), "30");
        assert!(!run.join("checkpoints/step-00000010").exists());
        assert!(run.join("checkpoints/step-00000020").exists());

        // A half-written checkpoint of a killed process is ignored and cleaned up.
        let stale = run.join("checkpoints/.step-00000040.tmp-999999");
        fs::create_dir_all(&stale).unwrap();
        assert_eq!(latest_checkpoint(run).unwrap().unwrap().0, 30);
        write_checkpoint(run, 50, &[("a.bin", b"50")], 2).unwrap();
        assert!(!stale.exists());
    }
}
