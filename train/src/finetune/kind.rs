//! The fine-tuning tasks there are: [`TaskKind`] names each, and [`with_task!`] maps each name
//! to its [`super::Task`] type. A new task is one variant and one arm of each match here, beside
//! its own module.

use exemplar_data::DataSource;
use serde::{Deserialize, Serialize};

/// The downstream task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Boxes (CenterNet-style head; VOC07 and COCO AP).
    Detection,
    /// Per-pixel classes (DeepLabv3 head; mIoU).
    Segmentation,
    /// Five facial landmarks (two-layer head on spatial features; inter-ocular error).
    Landmarks,
    /// A linear classifier on pooled features (top-1); frozen backbone = linear evaluation.
    Classification,
}

/// The one dispatch from a [`TaskKind`] to its [`Task`](super::Task) type: evaluates `$body`
/// with `$T` naming the task's type. `train finetune`, `train eval <task>` and the study use it;
/// `export` needs none (it rebuilds networks from `network.json`,
/// `exemplar_models::NetworkConfig`).
///
/// ```ignore
/// let summary = with_task!(config.task, T => finetune::<T>(config, &out, false))?;
/// ```
#[macro_export]
macro_rules! with_task {
    ($kind:expr, $T:ident => $body:expr) => {
        match $kind {
            $crate::finetune::TaskKind::Detection => {
                type $T = $crate::finetune::detection::DetectionTask;
                $body
            }
            $crate::finetune::TaskKind::Segmentation => {
                type $T = $crate::finetune::segmentation::SegmentationTask;
                $body
            }
            $crate::finetune::TaskKind::Landmarks => {
                type $T = $crate::finetune::landmarks::LandmarkTask;
                $body
            }
            $crate::finetune::TaskKind::Classification => {
                type $T = $crate::finetune::classification::ClassificationTask;
                $body
            }
        }
    };
}

impl TaskKind {
    /// Its name on the command line, in configuration files and on model cards.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Detection => "detection",
            TaskKind::Segmentation => "segmentation",
            TaskKind::Landmarks => "landmarks",
            TaskKind::Classification => "classification",
        }
    }

    /// The headline metric's title in reports ([`Task::METRIC_TITLE`](super::Task::METRIC_TITLE)).
    pub fn metric_title(self) -> &'static str {
        with_task!(self, T => <T as super::Task>::METRIC_TITLE)
    }

    /// Whether a lower headline metric is better.
    pub fn lower_is_better(self) -> bool {
        with_task!(self, T => <T as super::Task>::LOWER_IS_BETTER)
    }

    /// The data it trains on unless told otherwise.
    pub fn default_data(self) -> DataSource {
        with_task!(self, T => <T as super::Task>::DEFAULT_DATA)
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
