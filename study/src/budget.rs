//! The study's settings: every size, step count and MoCo setting that all compared methods
//! share. They are frozen in `configs/study.toml` (which the default study reads and which a
//! test keeps equal to [`Budget::default`]); `--scale` multiplies the data budget.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Sizes and shared settings of a study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    // --- pretraining of the methods study and of the transferred backbones ---
    pub image_size: usize,
    pub width: f32,
    pub batch_size: usize,
    /// Queue length K.
    pub queue_size: usize,
    /// Images drawn from the training split.
    pub train_subset: usize,
    pub epochs: usize,
    /// Key encoder momentum m of the four contrastive methods.
    pub key_momentum: f64,
    /// Shuffled BatchNorm groups of the key encoder.
    pub bn_splits: usize,
    /// Learning rate at batch 256 of the four contrastive methods (scaled linearly); CE keeps
    /// its own recipe's 0.1.
    pub contrastive_lr: f64,
    // --- scoring on frozen features ---
    pub probe_train: usize,
    pub probe_val: usize,
    pub knn_k: usize,
    pub probe_epochs: usize,
    // --- the augmentation ablation, on the built-in colour scenes ---
    pub ablation_image_size: usize,
    pub ablation_train: usize,
    pub ablation_val: usize,
    pub ablation_epochs: usize,
    // --- transfer ---
    pub transfer_image_size: usize,
    pub transfer_train: usize,
    pub transfer_val: usize,
    pub transfer_epochs: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("reading {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid study settings")]
    Parse {
        path: std::path::PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {what}")]
    Invalid {
        path: std::path::PathBuf,
        what: String,
    },
}

impl Default for Budget {
    /// The default study, frozen in `configs/study.toml` (see there for how each setting was
    /// chosen).
    fn default() -> Self {
        Self {
            image_size: 16,
            width: 0.125,
            batch_size: 128,
            queue_size: 4096,
            train_subset: 12_000,
            epochs: 16,
            key_momentum: 0.99,
            bn_splits: 2,
            contrastive_lr: 0.12,
            probe_train: 10_000,
            probe_val: 5_000,
            knn_k: 20,
            probe_epochs: 50,
            ablation_image_size: 32,
            ablation_train: 2_048,
            ablation_val: 1_000,
            ablation_epochs: 12,
            transfer_image_size: 32,
            transfer_train: 1_000,
            transfer_val: 500,
            transfer_epochs: 12,
        }
    }
}

impl Budget {
    /// Reads a settings file; every field must be present.
    pub fn load(path: &Path) -> Result<Self, BudgetError> {
        let text = std::fs::read_to_string(path).map_err(|source| BudgetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let budget: Budget = toml::from_str(&text).map_err(|source| BudgetError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        budget.check().map_err(|what| BudgetError::Invalid {
            path: path.to_path_buf(),
            what,
        })?;
        Ok(budget)
    }

    fn check(&self) -> Result<(), String> {
        let positive = [
            ("image_size", self.image_size),
            ("batch_size", self.batch_size),
            ("queue_size", self.queue_size),
            ("train_subset", self.train_subset),
            ("epochs", self.epochs),
            ("bn_splits", self.bn_splits),
            ("probe_train", self.probe_train),
            ("probe_val", self.probe_val),
            ("knn_k", self.knn_k),
            ("probe_epochs", self.probe_epochs),
            ("ablation_image_size", self.ablation_image_size),
            ("ablation_train", self.ablation_train),
            ("ablation_val", self.ablation_val),
            ("ablation_epochs", self.ablation_epochs),
            ("transfer_image_size", self.transfer_image_size),
            ("transfer_train", self.transfer_train),
            ("transfer_val", self.transfer_val),
            ("transfer_epochs", self.transfer_epochs),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if !(self.width > 0.0 && self.width.is_finite()) {
            return Err(format!("width must be positive (got {})", self.width));
        }
        if !(0.0..1.0).contains(&self.key_momentum) {
            return Err(format!(
                "key_momentum must lie in [0, 1) (got {})",
                self.key_momentum
            ));
        }
        if !(self.contrastive_lr > 0.0 && self.contrastive_lr.is_finite()) {
            return Err(format!(
                "contrastive_lr must be positive (got {})",
                self.contrastive_lr
            ));
        }
        if !self.batch_size.is_multiple_of(self.bn_splits) {
            return Err(format!(
                "batch_size {} must divide into bn_splits {} groups",
                self.batch_size, self.bn_splits
            ));
        }
        Ok(())
    }

    /// The budget with its data multiplied by `scale`. Past the 60 000 images of
    /// Fashion-MNIST a larger scale means more epochs; a small scale (the tests') shrinks the
    /// batch and the queue with the data, and caps every length at a few epochs (4 of
    /// pretraining, 3 on the built-in corpora, 2 of fine-tuning).
    pub fn scaled(&self, scale: f64) -> Self {
        let scaled = |n: usize, floor: usize| ((n as f64 * scale).round() as usize).max(floor);
        let short = |epochs: usize, cap: usize| if scale < 1.0 { epochs.min(cap) } else { epochs };
        let train_subset = scaled(self.train_subset, 64).min(60_000);
        let epochs = ((self.epochs as f64 * self.train_subset as f64 * scale / train_subset as f64)
            .round() as usize)
            .max(self.epochs.min(2));
        let splits = self.bn_splits;
        let batch_size = self
            .batch_size
            .min(train_subset / 4)
            .max(16)
            .div_ceil(splits)
            * splits;
        Self {
            batch_size,
            queue_size: self
                .queue_size
                .min(train_subset.next_power_of_two())
                .max(batch_size * 2),
            train_subset,
            epochs: short(epochs, 4),
            ablation_epochs: short(self.ablation_epochs, 3),
            transfer_epochs: short(self.transfer_epochs, 2),
            probe_train: scaled(self.probe_train, 100),
            probe_val: scaled(self.probe_val, 100),
            ablation_train: scaled(self.ablation_train, 64),
            ablation_val: scaled(self.ablation_val, 32),
            transfer_train: scaled(self.transfer_train, 32),
            transfer_val: scaled(self.transfer_val, 16),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_settings_file_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/study.toml");
        assert_eq!(Budget::load(&path).unwrap(), Budget::default());
    }

    #[test]
    fn the_budget_grows_with_the_scale() {
        let base = Budget::default().scaled(1.0);
        assert_eq!(base, Budget::default());
        let large = Budget::default().scaled(10.0);
        assert_eq!(large.train_subset, 60_000);
        assert_eq!(large.epochs, 32);
        let tiny_lengths = Budget::default().scaled(0.005);
        assert!(tiny_lengths.epochs <= 4 && tiny_lengths.transfer_epochs <= 2);
        let tiny = Budget::default().scaled(0.001);
        assert!(tiny.batch_size <= tiny.train_subset / 2);
        assert_eq!(tiny.batch_size % tiny.bn_splits, 0);
    }

    #[test]
    fn bad_settings_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("study.toml");
        let mut text = toml::to_string(&Budget::default()).unwrap();
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Budget::load(&path).unwrap(), Budget::default());
        text = text.replace("key_momentum = 0.99", "key_momentum = 1.5");
        std::fs::write(&path, &text).unwrap();
        let error = Budget::load(&path).unwrap_err().to_string();
        assert!(error.contains("key_momentum must lie in [0, 1)"), "{error}");
        std::fs::write(&path, "epochs = 3\nbogus = 1\n").unwrap();
        assert!(matches!(
            Budget::load(&path),
            Err(BudgetError::Parse { .. })
        ));
        assert!(matches!(
            Budget::load(&dir.path().join("missing.toml")),
            Err(BudgetError::Read { .. })
        ));
    }
}
