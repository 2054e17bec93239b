//! The settings sweep (`--study sweep`): MoCo-v2 with one shared setting changed at a time
//! around the frozen settings, each run scored by a linear probe fitted and scored on two
//! disjoint parts of the *training* split that pretraining did not use. The validation split
//! the report scores on is never looked at, so the settings are not fitted to it.

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::{PretrainResult, StudyOptions};

/// One point of the sweep: the frozen settings with one change.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `frozen`, `key_momentum = 0.999`, …
    pub name: String,
    pub budget: Budget,
}

/// A sweep run, scored on held-out training images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub point: String,
    pub seed: u64,
    pub linear_top1: f64,
    pub knn_top1: f64,
    pub seconds: f64,
}

/// The points around `frozen`: the settings themselves, then one change each. The first two
/// changes are the ImageNet values the study used before (m = 0.999 without shuffled BN).
pub fn points(frozen: &Budget) -> Vec<Point> {
    let point = |name: String, budget: Budget| Point { name, budget };
    let mut points = vec![point("frozen settings".into(), *frozen)];
    let changes: [(String, Budget); 7] = [
        (
            "key_momentum = 0.999, bn_splits = 1 (ImageNet's)".into(),
            Budget {
                key_momentum: 0.999,
                bn_splits: 1,
                ..*frozen
            },
        ),
        (
            format!(
                "key_momentum = {}",
                if frozen.key_momentum == 0.99 {
                    0.9
                } else {
                    0.99
                }
            ),
            Budget {
                key_momentum: if frozen.key_momentum == 0.99 {
                    0.9
                } else {
                    0.99
                },
                ..*frozen
            },
        ),
        (
            format!("bn_splits = {}", if frozen.bn_splits == 1 { 2 } else { 1 }),
            Budget {
                bn_splits: if frozen.bn_splits == 1 { 2 } else { 1 },
                ..*frozen
            },
        ),
        (
            format!("contrastive_lr = {}", frozen.contrastive_lr * 4.0),
            Budget {
                contrastive_lr: frozen.contrastive_lr * 4.0,
                ..*frozen
            },
        ),
        (
            format!("queue_size = {}", frozen.queue_size / 4),
            Budget {
                queue_size: (frozen.queue_size / 4).max(frozen.batch_size * 2),
                ..*frozen
            },
        ),
        (
            format!("epochs = {}", frozen.epochs / 2),
            Budget {
                epochs: (frozen.epochs / 2).max(1),
                ..*frozen
            },
        ),
        (
            format!("epochs = {}", frozen.epochs * 2),
            Budget {
                epochs: frozen.epochs * 2,
                ..*frozen
            },
        ),
    ];
    points.extend(
        changes
            .into_iter()
            .map(|(name, budget)| point(name, budget)),
    );
    points
}

/// Where the sweep around `frozen` keeps its runs: sweeps around different settings keep
/// their runs apart.
pub fn root(options: &StudyOptions, frozen: &Budget) -> std::path::PathBuf {
    options.work.join("sweep").join(format!(
        "around-{:016x}",
        fnv1a(&toml::to_string(frozen).unwrap_or_default())
    ))
}

impl SweepResult {
    /// The sweep's record of a scored run at `point`.
    pub fn of(point: String, run: &PretrainResult) -> Self {
        Self {
            point,
            seed: run.seed,
            linear_top1: run.linear_top1,
            knn_top1: run.knn_top1,
            seconds: run.seconds,
        }
    }
}

/// FNV-1a, 64 bits: a stable name for a settings file's sweep directory.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The sweep's name for the untrained network, its floor.
pub const UNTRAINED_POINT: &str = "untrained network (the floor)";
