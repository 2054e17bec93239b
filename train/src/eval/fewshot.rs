//! N-way K-shot episodes on frozen features (the Mini-ImageNet protocol of the paper, after
//! Tian et al. 2020): each episode draws `ways` classes, `shots` support and `queries` query
//! images per class, fits a softmax (logistic-regression) classifier on the support features
//! for a fixed number of full-batch gradient rounds, and scores the queries.
//!
//! Features are centred on the episode's support mean and then L2-normalised (SimpleShot's
//! "CL2N", using only what an episode may see). Without the centring, pooled ReLU features
//! share one dominant direction: after normalisation every pair has a cosine near 1 and a
//! fixed budget of gradient rounds cannot separate them.
//! The result is the mean accuracy over episodes with its 95% confidence interval
//! (1.96 · std / √episodes).

use rand::seq::{IndexedRandom, SliceRandom};
use serde::Serialize;

use super::features::Features;
use exemplar_data::synthetic::rng_for;

#[derive(Debug, Clone, Copy)]
pub struct FewShotOptions {
    pub ways: usize,
    pub shots: usize,
    pub queries: usize,
    pub episodes: usize,
    /// Gradient rounds of the per-episode classifier.
    pub rounds: usize,
    pub lr: f32,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FewShotResult {
    pub ways: usize,
    pub shots: usize,
    pub queries: usize,
    pub episodes: usize,
    /// Mean query accuracy, percent.
    pub accuracy: f64,
    /// Half-width of the 95% confidence interval, percent.
    pub ci95: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FewShotError(String);

/// Runs the episodes on `features` (the evaluation split's, labelled by class).
pub fn evaluate(
    features: &Features,
    options: FewShotOptions,
) -> Result<FewShotResult, FewShotError> {
    let FewShotOptions {
        ways,
        shots,
        queries,
        episodes,
        ..
    } = options;
    if ways < 2 || shots == 0 || queries == 0 || episodes == 0 {
        return Err(FewShotError(
            "ways ≥ 2, shots, queries and episodes ≥ 1 are required".into(),
        ));
    }
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &label) in features.labels.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    let eligible: Vec<&Vec<usize>> = by_class
        .values()
        .filter(|v| v.len() >= shots + queries)
        .collect();
    if eligible.len() < ways {
        return Err(FewShotError(format!(
            "{ways}-way {shots}-shot episodes with {queries} queries need {ways} classes of at least {} images; the data has {}",
            shots + queries,
            eligible.len()
        )));
    }
    let dim = features.dim;
    let mut accuracies = Vec::with_capacity(episodes);
    for episode in 0..episodes {
        let mut rng = rng_for(options.seed, &[40, episode as u64]);
        let classes: Vec<&&Vec<usize>> = eligible.choose_multiple(&mut rng, ways).collect();
        let (mut support, mut query) = (Vec::new(), Vec::new());
        for (way, members) in classes.iter().enumerate() {
            let mut members: Vec<usize> = members.to_vec();
            members.shuffle(&mut rng);
            support.extend(members[..shots].iter().map(|&i| (i, way)));
            query.extend(members[shots..shots + queries].iter().map(|&i| (i, way)));
        }
        let (support_x, query_x) = centred_normalized(features, &support, &query);
        let support_rows: Vec<(usize, usize)> = support
            .iter()
            .enumerate()
            .map(|(k, &(_, way))| (k, way))
            .collect();
        let row = |k: usize| &support_x[k * dim..(k + 1) * dim];
        let weights = fit_softmax(&support_rows, &row, ways, dim, options);
        let correct = query
            .iter()
            .enumerate()
            .filter(|&(k, &(_, way))| {
                predict(&weights, &query_x[k * dim..(k + 1) * dim], ways, dim) == way
            })
            .count();
        accuracies.push(correct as f64 / query.len() as f64);
    }
    let n = accuracies.len() as f64;
    let mean = accuracies.iter().sum::<f64>() / n;
    let variance = accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok(FewShotResult {
        ways,
        shots,
        queries,
        episodes,
        accuracy: 100.0 * mean,
        ci95: 100.0 * 1.96 * variance.sqrt() / n.sqrt(),
    })
}

/// The support and query rows, centred on the support mean and L2-normalised.
fn centred_normalized(
    features: &Features,
    support: &[(usize, usize)],
    query: &[(usize, usize)],
) -> (Vec<f32>, Vec<f32>) {
    let dim = features.dim;
    let row = |i: usize| &features.values[i * dim..(i + 1) * dim];
    let mut mean = vec![0.0f32; dim];
    for &(i, _) in support {
        for (m, v) in mean.iter_mut().zip(row(i)) {
            *m += v / support.len() as f32;
        }
    }
    let transform = |rows: &[(usize, usize)]| -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * dim);
        for &(i, _) in rows {
            let centred: Vec<f32> = row(i).iter().zip(&mean).map(|(v, m)| v - m).collect();
            let norm = centred.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            out.extend(centred.iter().map(|v| v / norm));
        }
        out
    };
    (transform(support), transform(query))
}

/// Weights `[ways, dim + 1]` (the last column is the bias) of a softmax classifier trained by
/// full-batch gradient descent from zero.
fn fit_softmax<'a>(
    support: &[(usize, usize)],
    row: &impl Fn(usize) -> &'a [f32],
    ways: usize,
    dim: usize,
    options: FewShotOptions,
) -> Vec<f32> {
    let stride = dim + 1;
    let mut weights = vec![0.0f32; ways * stride];
    let mut grad = vec![0.0f32; ways * stride];
    let scale = 1.0 / support.len() as f32;
    for _ in 0..options.rounds {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for &(i, label) in support {
            let x = row(i);
            let probs = softmax(&logits(&weights, x, ways, dim));
            for (way, p) in probs.iter().enumerate() {
                let delta = (p - if way == label { 1.0 } else { 0.0 }) * scale;
                let g = &mut grad[way * stride..(way + 1) * stride];
                for (gk, xk) in g.iter_mut().zip(x) {
                    *gk += delta * xk;
                }
                g[dim] += delta;
            }
        }
        for (w, g) in weights.iter_mut().zip(&grad) {
            *w -= options.lr * g;
        }
    }
    weights
}

fn logits(weights: &[f32], x: &[f32], ways: usize, dim: usize) -> Vec<f32> {
    (0..ways)
        .map(|way| {
            let w = &weights[way * (dim + 1)..(way + 1) * (dim + 1)];
            w[..dim].iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + w[dim]
        })
        .collect()
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn predict(weights: &[f32], x: &[f32], ways: usize, dim: usize) -> usize {
    let l = logits(weights, x, ways, dim);
    super::knn::argmax(&l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> FewShotOptions {
        FewShotOptions {
            ways: 5,
            shots: 1,
            queries: 3,
            episodes: 50,
            rounds: 100,
            lr: 1.0,
            seed: 0,
        }
    }

    /// `classes` classes of `per_class` samples along distinct axes plus noise of `noise`.
    fn clustered(classes: usize, per_class: usize, noise: f32) -> Features {
        let dim = classes;
        let mut values = Vec::new();
        let mut labels = Vec::new();
        let mut rng = rng_for(1, &[]);
        for c in 0..classes {
            for _ in 0..per_class {
                for k in 0..dim {
                    let base = if k == c { 1.0 } else { 0.0 };
                    values.push(base + noise * (rand::Rng::random::<f32>(&mut rng) - 0.5));
                }
                labels.push(c as i64);
            }
        }
        Features {
            values,
            labels,
            dim,
        }
    }

    #[test]
    fn separable_classes_are_solved_and_noise_is_at_chance() {
        let easy = evaluate(&clustered(8, 6, 0.2), options()).unwrap();
        assert_eq!(easy.accuracy, 100.0);
        assert_eq!(easy.ci95, 0.0);
        // Pure noise: accuracy near chance (20%), with a real confidence interval.
        let noise = evaluate(&clustered(8, 6, 50.0), options()).unwrap();
        assert!(noise.accuracy < 45.0, "{noise:?}");
        assert!(noise.ci95 > 0.0);
    }

    #[test]
    fn too_few_classes_is_a_clear_error() {
        let err = evaluate(&clustered(3, 6, 0.1), options())
            .unwrap_err()
            .to_string();
        assert!(err.contains("need 5 classes"), "{err}");
    }
}
