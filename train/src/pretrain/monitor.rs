//! The kNN monitor of pretraining: the backbone's features of the validation split classified
//! by their nearest neighbours in the training split's (`--knn-every`), at the start, during the
//! run and at its end. It only reads the learner; the loop in `mod.rs` calls it at those points.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use exemplar_data::Dataset;
use serde_json::json;

use super::Learner;
use crate::config::PretrainConfig;
use crate::eval::features::{ExtractOptions, train_and_val_features};
use crate::eval::knn::{KnnResult, knn_classify};
use crate::eval::{default_result_path, write_result};
use crate::progress::{MetricsLog, Progress};
use crate::run::{RunError, io_error};

/// The kNN monitor: scores the current backbone on the validation split (when there is one),
/// prints the result and logs it.
pub(super) struct KnnMonitor<'a> {
    pub(super) config: &'a PretrainConfig,
    pub(super) train_set: &'a Arc<dyn Dataset>,
    pub(super) val_set: Option<&'a Arc<dyn Dataset>>,
    pub(super) device: &'a Device,
}

impl KnnMonitor<'_> {
    /// Before the first step of a fresh run: the untrained network's score, the baseline every
    /// later kNN result is read against.
    pub(super) fn at_start(
        &self,
        learner: &Learner,
        start: usize,
        progress: &Progress,
        metrics: &mut MetricsLog,
    ) -> Result<(), RunError> {
        if start == 0 && self.config.knn_every > 0 {
            self.record(learner, 0, " (initialisation)", progress, metrics)?;
        }
        Ok(())
    }

    /// After step `done` of `end`: every `knn_every` steps (the last step is scored by
    /// [`Self::at_end`]).
    pub(super) fn after_step(
        &self,
        learner: &Learner,
        done: usize,
        end: usize,
        progress: &Progress,
        metrics: &mut MetricsLog,
    ) -> Result<(), RunError> {
        let every = self.config.knn_every;
        if every > 0 && done.is_multiple_of(every) && done != end {
            self.record(learner, done, "", progress, metrics)?;
        }
        Ok(())
    }

    /// After the run: the final score, also written to `RUN/eval/knn.json`.
    pub(super) fn at_end(
        &self,
        learner: &Learner,
        steps: usize,
        run_dir: &Path,
        progress: &Progress,
        metrics: &mut MetricsLog,
    ) -> Result<Option<KnnResult>, RunError> {
        let knn = self.record(learner, steps, " (final)", progress, metrics)?;
        if let Some(knn) = &knn {
            let path = default_result_path(run_dir, "knn");
            let data = self.train_set.describe();
            write_result(&path, "knn", run_dir, self.config.method.name(), &data, knn)
                .map_err(io_error(&path))?;
        }
        Ok(knn)
    }

    fn record(
        &self,
        learner: &Learner,
        step: usize,
        note: &str,
        progress: &Progress,
        metrics: &mut MetricsLog,
    ) -> Result<Option<KnnResult>, RunError> {
        let Some(val_set) = self.val_set.filter(|_| self.config.knn_bank_size > 0) else {
            return Ok(None);
        };
        let config = self.config;
        let backbone = learner.backbone().valid();
        let options = ExtractOptions {
            image_size: config.image_size,
            normalization: config.normalization,
            batch_size: config.batch_size.max(64),
            workers: config.workers,
            on_bad_image: config.on_bad_image,
        };
        let (bank, queries) = train_and_val_features(
            &backbone,
            self.train_set,
            val_set,
            config.knn_bank_size,
            options,
            self.device,
        )?;
        let knn = knn_classify(
            &bank,
            &queries,
            self.train_set.class_names().len(),
            config.knn_k,
            config.knn_temperature,
            self.device,
        );
        progress.println(&format!(
            "step {step}: kNN top-1 {:.2}%{note}",
            knn.top1 * 100.0
        ));
        let entry = json!({"step": step, "knn_top1": knn.top1});
        metrics.write(&entry).map_err(io_error(metrics.path()))?;
        Ok(Some(knn))
    }
}
