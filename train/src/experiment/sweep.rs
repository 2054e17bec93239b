//! The settings sweep (`--study sweep`): MoCo-v2 with one shared setting changed at a time
//! around the frozen settings, each run scored by a linear probe fitted and scored on two
//! disjoint parts of the *training* split that pretraining did not use. The validation split
//! the report scores on is never looked at, so the settings are not fitted to it.

use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::runs::{Probe, Scoring, pretrain_run, untrained_run};
use super::{
    Arm, Corpus, ExperimentError, StudyOptions, StudyResults, UNTRAINED, log, pretrain_config,
};
use crate::config::Method;

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

/// Runs every point for every seed and adds the results to `results`.
pub fn run(
    options: &StudyOptions,
    frozen: &Budget,
    results: &mut StudyResults,
    done: &mut usize,
    total: usize,
) -> Result<(), ExperimentError> {
    let arm = Arm::default_for(Method::MocoV2);
    // Sweeps around different settings keep their runs apart.
    let root = options.work.join("sweep").join(format!(
        "around-{:016x}",
        fnv1a(&toml::to_string(frozen).unwrap_or_default())
    ));
    for (index, point) in points(frozen).into_iter().enumerate() {
        let probe = Probe {
            scoring: Scoring::HeldOut,
            ..Probe::for_corpus(options, &point.budget, Corpus::Main)
        };
        for seed in 0..options.seeds as u64 {
            *done += 1;
            let dir = root
                .join(format!("point{index}"))
                .join(format!("seed{seed}"));
            let config = pretrain_config(options, &point.budget, arm, seed);
            let (result, reused) = pretrain_run(&config, arm, &dir, &probe, options)?;
            log(
                *done,
                total,
                &format!("sweep: {} seed {seed}", point.name),
                reused,
                format!("held-out {}", result.scores()),
            );
            results.reused += usize::from(reused);
            results.sweep.push(SweepResult {
                point: point.name.clone(),
                seed,
                linear_top1: result.linear_top1,
                knn_top1: result.knn_top1,
                seconds: result.seconds,
            });
        }
    }
    // The floor on the same held-out images: the untrained network.
    let probe = Probe {
        scoring: Scoring::HeldOut,
        ..Probe::for_corpus(options, frozen, Corpus::Main)
    };
    for seed in 0..options.seeds as u64 {
        *done += 1;
        let dir = options
            .work
            .join("sweep")
            .join(UNTRAINED)
            .join(format!("seed{seed}"));
        let config = pretrain_config(options, frozen, Arm::default_for(Method::Supervised), seed);
        let (result, reused) = untrained_run(options, &config, &probe, &dir, seed)?;
        log(
            *done,
            total,
            &format!("sweep: untrained seed {seed}"),
            reused,
            format!("held-out {}", result.scores()),
        );
        results.reused += usize::from(reused);
        results.sweep.push(SweepResult {
            point: UNTRAINED_POINT.into(),
            seed,
            linear_top1: result.linear_top1,
            knn_top1: result.knn_top1,
            seconds: result.seconds,
        });
    }
    Ok(())
}

/// FNV-1a, 64 bits: a stable name for a settings file's sweep directory.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The sweep's name for the untrained network, its floor.
pub const UNTRAINED_POINT: &str = "untrained network (the floor)";
