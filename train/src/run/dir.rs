//! The run directory rules shared by `train pretrain` and `train finetune`: where a new run goes,
//! when `--out` may be used, and what `--resume` continues with.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The resolved configuration saved in every run directory.
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Error)]
pub enum RunDirError {
    #[error(
        "{0} already holds a run with checkpoints: pass --resume to continue it, or choose another --out"
    )]
    Occupied(PathBuf),
    #[error("{path} is not a {what} run directory (no {CONFIG_FILE})")]
    NotARun { path: PathBuf, what: &'static str },
    #[error("--resume continues with the run's saved configuration; drop --config")]
    ConfigWithResume,
    #[error(
        "--resume continues with the run's saved configuration; these flags would change it: {}",
        .0.join(", ")
    )]
    ChangedByFlags(Vec<String>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `runs/<name>-<unix time>`: where a run goes without `--out`.
pub fn default_run_dir(name: &str) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{name}-{seconds}"))
}

/// A new run may not start in a directory that holds another run's checkpoints.
pub fn check_new(out: &Path) -> Result<(), RunDirError> {
    let found = crate::checkpoint::latest_checkpoint(out).map_err(|source| RunDirError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    match found {
        Some(_) => Err(RunDirError::Occupied(out.to_path_buf())),
        None => Ok(()),
    }
}

/// The saved configuration a resumed run continues with. `changed` lists the flags given that
/// would change the training (only runtime flags may accompany `--resume`).
pub fn resume_config(
    out: &Path,
    what: &'static str,
    config_file_given: bool,
    changed: Vec<String>,
) -> Result<PathBuf, RunDirError> {
    if config_file_given {
        return Err(RunDirError::ConfigWithResume);
    }
    if !changed.is_empty() {
        return Err(RunDirError::ChangedByFlags(changed));
    }
    saved_config(out, what)
}

/// The saved configuration of the run in `dir`.
pub fn saved_config(dir: &Path, what: &'static str) -> Result<PathBuf, RunDirError> {
    let saved = dir.join(CONFIG_FILE);
    if saved.is_file() {
        Ok(saved)
    } else {
        Err(RunDirError::NotARun {
            path: dir.to_path_buf(),
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupied_directories_and_changed_flags_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        check_new(dir.path()).unwrap();
        crate::checkpoint::write_checkpoint(dir.path(), 1, &[("a", b"1")], 1).unwrap();
        let err = check_new(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pass --resume"), "{err}");
        let err = resume_config(dir.path(), "pretraining", false, vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a pretraining run directory"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), "").unwrap();
        resume_config(dir.path(), "pretraining", false, vec![]).unwrap();
        let err = resume_config(dir.path(), "pretraining", false, vec!["--lr".into()])
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("would change it: --lr"), "{err}");
        assert!(resume_config(dir.path(), "pretraining", true, vec![]).is_err());
        assert!(default_run_dir("moco-v2").starts_with("runs"));
    }
}
