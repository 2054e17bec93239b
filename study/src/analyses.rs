//! The study's runs on finished backbones that are not fine-tuning: few-shot episodes on the
//! classes a backbone never saw, and feature inversion. Each is recorded and reused like the
//! other runs, by its configuration and its backbone's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::inversion::score::{colour_matched_mse, edge_correlation};
use crate::inversion::{Backbone, InvertOptions, invert, pixel_mse};
use crate::runs::{eval_error, record, recorded};
use crate::{Arm, BASE_CLASSES, Corpus, ExperimentError, StudyOptions};
use exemplar_data::subset::Subset;
use exemplar_data::{self, DataSource, Dataset, Split};
use exemplar_train::config::BadImagePolicy;
use exemplar_train::eval::features::{ExtractOptions, extract, spread_indices};
use exemplar_train::eval::fewshot::{self, FewShotOptions};

/// The backbones the few-shot study compares: pretrained on the base classes only, and on all
/// classes (the reference: today's few-shot figures, from classes seen in pretraining).
pub const FEWSHOT_CORPORA: [Corpus; 2] = [Corpus::Base, Corpus::Main];
/// Classes per episode, and the shots compared.
pub const WAYS: usize = 5;
const QUERIES: usize = 15;
/// The paper's count (Mini-ImageNet's usual protocol).
const EPISODES: usize = 600;
/// The pictures each inversion reconstructs: this many of the scenes' validation split,
/// spread over it.
pub const INVERTED_IMAGES: usize = 10;

/// A backbone's novel-class few-shot accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FewShotRun {
    pub method: String,
    pub corpus: String,
    pub seed: u64,
    /// 5-way 1-shot and 5-shot accuracy (%) on the classes from [`BASE_CLASSES`] on, with the
    /// 95% half-width over episodes.
    pub one_shot: f64,
    pub one_shot_ci95: f64,
    pub five_shot: f64,
    pub five_shot_ci95: f64,
    #[serde(default)]
    pub seconds: f64,
    pub config: String,
}

/// A backbone's inversions of [`INVERTED_IMAGES`] pictures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InversionRun {
    pub method: String,
    pub corpus: String,
    pub seed: u64,
    /// Adam steps of each inversion.
    pub steps: usize,
    /// Pixel MSE of each reconstruction (values in [0, 1]).
    pub mse: Vec<f64>,
    /// Pixel MSE after matching each reconstruction's colour statistics to its picture's
    /// ([`colour_matched_mse`]): the structure score, against the same flat-colour reference.
    #[serde(default)]
    pub matched_mse: Vec<f64>,
    /// Correlation of each reconstruction's edges with its picture's ([`edge_correlation`]).
    #[serde(default)]
    pub edge_correlation: Vec<f64>,
    /// The relative feature distance before the first step and after the last, per picture.
    pub feature_before: Vec<f64>,
    pub feature_after: Vec<f64>,
    /// Pixel MSE of a flat image of each picture's mean colour: what a reconstruction that
    /// kept only the average colour would score.
    #[serde(default)]
    pub flat_mse: Vec<f64>,
    #[serde(default)]
    pub seconds: f64,
    pub config: String,
}

impl InversionRun {
    pub fn mean_mse(&self) -> f64 {
        mean(&self.mse)
    }

    pub fn mean_matched_mse(&self) -> f64 {
        mean(&self.matched_mse)
    }

    pub fn mean_edge_correlation(&self) -> f64 {
        mean(&self.edge_correlation)
    }

    pub fn mean_flat_mse(&self) -> f64 {
        mean(&self.flat_mse)
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn analysis_dir(options: &StudyOptions, kind: &str, arm: Arm, seed: u64) -> PathBuf {
    options
        .work
        .join(kind)
        .join(arm.slug())
        .join(format!("seed{seed}"))
}

fn create_dir(dir: &Path) -> Result<(), ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|source| ExperimentError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// A finished stage-1 backbone: its arm and seed, run directory and configuration.
pub struct Finished {
    pub arm: Arm,
    pub seed: u64,
    pub dir: PathBuf,
    pub config: String,
}

/// 5-way 1- and 5-shot episodes on the validation images of the classes from
/// [`BASE_CLASSES`] on, with the frozen backbone in `backbone_dir` (or the recorded result).
/// Every arm of a seed draws the same episodes.
pub fn fewshot_run(
    options: &StudyOptions,
    budget: &Budget,
    backbone: &Finished,
) -> Result<(FewShotRun, bool), ExperimentError> {
    let (arm, seed, backbone_dir, backbone_config) =
        (backbone.arm, backbone.seed, &backbone.dir, &backbone.config);
    let dir = analysis_dir(options, "fewshot", arm, seed);
    let identity = format!(
        "{backbone_config}\n# few-shot: classes {BASE_CLASSES}.. of the validation split, \
         {WAYS}-way 1 and 5 shots, {QUERIES} queries, {EPISODES} episodes"
    );
    if let Some(result) = recorded::<FewShotRun>(&dir, &identity, |r| &r.config) {
        return Ok((result, true));
    }
    let started = Instant::now();
    let fail = eval_error(&dir);
    let device = exemplar_train::device::select(&options.device).map_err(|e| fail(e.into()))?;
    let (backbone, card) =
        exemplar_models::card::load_backbone(backbone_dir, &device).map_err(|e| fail(e.into()))?;
    let backbone = burn::module::Module::valid(&backbone);
    let synthetic = crate::pretrain_config(options, budget, arm, seed).synthetic;
    let val = exemplar_data::open(&options.data, Split::Val, synthetic, card.image_size)
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| fail(format!("{} has no validation split", options.data).into()))?;
    let novel = Subset::with_labels(val, |label| {
        usize::try_from(label).is_ok_and(|label| label >= BASE_CLASSES)
    })
    .map_err(|e| fail(e.into()))?;
    let indices = (0..novel.len()).collect();
    let extract_options = ExtractOptions {
        image_size: card.image_size,
        normalization: card.normalization,
        batch_size: 256,
        workers: options.workers,
        on_bad_image: BadImagePolicy::Fail,
    };
    let features = extract(
        &backbone,
        Arc::new(novel),
        indices,
        extract_options,
        &device,
    )
    .map_err(|e| fail(e.into()))?;
    let episodes = |shots| {
        fewshot::evaluate(
            &features,
            FewShotOptions {
                ways: WAYS,
                shots,
                queries: QUERIES,
                episodes: EPISODES,
                rounds: 100,
                lr: 1.0,
                seed,
            },
        )
        .map_err(|e| fail(e.into()))
    };
    let (one, five) = (episodes(1)?, episodes(5)?);
    let result = FewShotRun {
        method: arm.method.name().to_string(),
        corpus: arm.corpus.name().to_string(),
        seed,
        one_shot: one.accuracy,
        one_shot_ci95: one.ci95,
        five_shot: five.accuracy,
        five_shot_ci95: five.ci95,
        seconds: started.elapsed().as_secs_f64(),
        config: identity,
    };
    create_dir(&dir)?;
    record(&dir, &result)?;
    Ok((result, false))
}

/// The pictures the inversion study reconstructs, at `size`.
pub fn inverted_images(
    budget: &Budget,
    size: usize,
) -> Result<Vec<exemplar_data::Image>, ExperimentError> {
    let scenes = exemplar_data::open(
        &DataSource::Synthetic,
        Split::Val,
        crate::scenes(budget),
        size,
    )
    .map_err(ExperimentError::Views)?
    .ok_or_else(|| ExperimentError::Invalid("the scenes have no validation split".into()))?;
    spread_indices(scenes.len(), INVERTED_IMAGES)
        .into_iter()
        .map(|i| scenes.get(i).map(|(image, _)| image))
        .collect::<Result<_, _>>()
        .map_err(ExperimentError::Views)
}

/// The pixel MSE of each picture against a flat image of its own mean colour.
fn flat_mse(pictures: &[exemplar_data::Image]) -> Vec<f64> {
    pictures
        .iter()
        .map(|picture| {
            let pixels = (picture.data.len() / 3).max(1) as f32;
            let mut mean = [0.0f32; 3];
            for pixel in picture.data.chunks_exact(3) {
                (0..3).for_each(|c| mean[c] += pixel[c] / pixels);
            }
            let mut flat = picture.clone();
            flat.data
                .chunks_exact_mut(3)
                .for_each(|pixel| pixel.copy_from_slice(&mean));
            f64::from(pixel_mse(picture, &flat))
        })
        .collect()
}

/// Where an inversion run keeps reconstruction `index` as a PNG.
pub fn reconstruction_path(
    options: &StudyOptions,
    arm: Arm,
    seed: u64,
    index: usize,
) -> std::path::PathBuf {
    analysis_dir(options, "inversion", arm, seed).join(format!("reconstruction-{index}.png"))
}

/// Adam steps of each inversion: `train analyze invert`'s default, fewer when `--scale`
/// shrinks the study below 1 (the tests').
fn inversion_steps(scale: f64) -> usize {
    let steps = InvertOptions::default().steps as f64;
    ((steps * scale.min(1.0)).round() as usize).max(10)
}

/// Inverts the frozen backbone in `backbone_dir` on [`INVERTED_IMAGES`] scenes with
/// [`InvertOptions::default`] (a Deep Image Prior, the res5 map; fewer steps below scale 1),
/// seeded by `seed` so that every arm of a seed starts from the same generator.
pub fn invert_run(
    options: &StudyOptions,
    budget: &Budget,
    backbone: &Finished,
) -> Result<(InversionRun, bool), ExperimentError> {
    let (arm, seed, backbone_dir, backbone_config) =
        (backbone.arm, backbone.seed, &backbone.dir, &backbone.config);
    let dir = analysis_dir(options, "inversion", arm, seed);
    let invert_options = InvertOptions {
        seed,
        steps: inversion_steps(options.scale),
        ..InvertOptions::default()
    };
    let identity = format!(
        "{backbone_config}\n# inversion: {INVERTED_IMAGES} validation scenes, {:?}",
        invert_options
    );
    if let Some(result) = recorded::<InversionRun>(&dir, &identity, |r| &r.config) {
        return Ok((result, true));
    }
    let invert_error = |source| ExperimentError::Invert {
        run: backbone_dir.to_path_buf(),
        source,
    };
    let device =
        exemplar_train::device::select(&options.device).map_err(|e| eval_error(&dir)(e.into()))?;
    let backbone = Backbone::load(backbone_dir, &device).map_err(invert_error)?;
    let [height, width] = backbone.size;
    if height != width {
        return Err(ExperimentError::Invalid(format!(
            "{}: a {width}×{height} input; the study's backbones are square",
            backbone_dir.display()
        )));
    }
    create_dir(&dir)?;
    let started = Instant::now();
    let mut result = InversionRun {
        method: arm.method.name().to_string(),
        corpus: arm.corpus.name().to_string(),
        seed,
        steps: invert_options.steps,
        mse: Vec::new(),
        matched_mse: Vec::new(),
        edge_correlation: Vec::new(),
        feature_before: Vec::new(),
        feature_after: Vec::new(),
        flat_mse: Vec::new(),
        seconds: 0.0,
        config: identity,
    };
    let pictures = inverted_images(budget, width)?;
    result.flat_mse = flat_mse(&pictures);
    for (index, image) in pictures.iter().enumerate() {
        let inversion = invert(&backbone, image, &invert_options, &device).map_err(invert_error)?;
        let reconstruction = &inversion.image;
        result.mse.push(f64::from(pixel_mse(image, reconstruction)));
        result
            .matched_mse
            .push(f64::from(colour_matched_mse(image, reconstruction)));
        result
            .edge_correlation
            .push(f64::from(edge_correlation(image, reconstruction)));
        result
            .feature_before
            .push(f64::from(inversion.initial_loss));
        result.feature_after.push(f64::from(inversion.final_loss));
        let path = reconstruction_path(options, arm, seed, index);
        inversion
            .image
            .to_rgb8()
            .save(&path)
            .map_err(|e| eval_error(&path)(e.into()))?;
    }
    result.seconds = started.elapsed().as_secs_f64();
    record(&dir, &result)?;
    Ok((result, false))
}

/// The inversion study's picture: each scene and its reconstruction through each method's
/// backbone of seed 0, written to `path`. `false` (and nothing written) when those runs are
/// not all there.
pub fn inversion_figure(
    options: &StudyOptions,
    budget: &Budget,
    path: &Path,
) -> Result<bool, ExperimentError> {
    let arms = crate::TRANSFERRED.map(|m| Arm::on(m, crate::INVERTED_CORPUS));
    let mut rows = Vec::new();
    for (index, picture) in inverted_images(budget, budget.ablation_image_size)?
        .into_iter()
        .enumerate()
    {
        let mut row = vec![picture];
        for arm in arms {
            let file = reconstruction_path(options, arm, 0, index);
            match image::open(&file) {
                Ok(image) => row.push(exemplar_data::Image::from_rgb8(&image.to_rgb8())),
                Err(_) => return Ok(false),
            }
        }
        rows.push(row);
    }
    let columns: Vec<String> = std::iter::once("picture".to_string())
        .chain(arms.map(|arm| arm.label().to_string()))
        .collect();
    crate::inversion::figure::grid(&columns, &rows)
        .save(path)
        .map_err(|e| eval_error(path)(e.into()))?;
    Ok(true)
}
