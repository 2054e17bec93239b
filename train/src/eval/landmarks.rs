//! Landmark metric: the mean over images of the inter-ocular normalised error (mean point
//! distance divided by the distance between the eye centres), in percent, as reported on MAFL,
//! plus the failure rate (images above 10%).

use exemplar_inference::landmarks::normalized_error;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct LandmarkMetrics {
    /// Mean inter-ocular normalised error, percent.
    pub nme_percent: f64,
    /// Share of images with an error above 10%, percent.
    pub failure_rate_percent: f64,
    /// Mean error of each point, percent of the inter-ocular distance.
    pub per_point_percent: Vec<(String, f64)>,
    pub images: usize,
    /// Images left out because their eye centres coincide.
    pub skipped: usize,
}

/// `(x, y)` pixel coordinates of an image's points.
pub type Points = Vec<[f32; 2]>;

/// Scores `(predicted, truth)` point sets.
pub fn evaluate(
    pairs: &[(Points, Points)],
    point_names: &[String],
    normalizer: [usize; 2],
) -> LandmarkMetrics {
    let mut errors = Vec::with_capacity(pairs.len());
    let mut per_point = vec![0.0f64; point_names.len()];
    for (predicted, truth) in pairs {
        let Some(e) = normalized_error(predicted, truth, normalizer) else {
            continue;
        };
        errors.push(e as f64);
        let eye = distance(truth[normalizer[0]], truth[normalizer[1]]);
        for (k, slot) in per_point.iter_mut().enumerate() {
            *slot += distance(predicted[k], truth[k]) / eye;
        }
    }
    let n = errors.len().max(1) as f64;
    LandmarkMetrics {
        nme_percent: 100.0 * errors.iter().sum::<f64>() / n,
        failure_rate_percent: 100.0 * errors.iter().filter(|&&e| e > 0.1).count() as f64 / n,
        per_point_percent: point_names
            .iter()
            .cloned()
            .zip(per_point.iter().map(|s| 100.0 * s / n))
            .collect(),
        images: errors.len(),
        skipped: pairs.len() - errors.len(),
    }
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f64 {
    (((a[0] - b[0]) as f64).powi(2) + ((a[1] - b[1]) as f64).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_nme_and_failures() {
        let truth = vec![[0.0, 0.0], [10.0, 0.0]];
        let names = vec!["l".to_string(), "r".to_string()];
        let pairs = vec![
            // Errors 0 and 1 px → mean 0.5 px over 10 px: 5%.
            (vec![[0.0, 0.0], [10.0, 1.0]], truth.clone()),
            // Errors 3 and 3 px → 30%: a failure.
            (vec![[3.0, 0.0], [13.0, 0.0]], truth.clone()),
            // Eyes coincide: skipped.
            (vec![[0.0, 0.0], [0.0, 0.0]], vec![[1.0, 1.0], [1.0, 1.0]]),
        ];
        let m = evaluate(&pairs, &names, [0, 1]);
        assert!((m.nme_percent - 17.5).abs() < 1e-4, "{}", m.nme_percent);
        assert!((m.failure_rate_percent - 50.0).abs() < 1e-9);
        assert_eq!((m.images, m.skipped), (2, 1));
        assert!((m.per_point_percent[1].1 - 20.0).abs() < 1e-4);
    }
}
