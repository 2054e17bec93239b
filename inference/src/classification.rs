//! Class logits to ranked probabilities: the softmax and the top k.

use std::convert::Infallible;

use serde::{Deserialize, Serialize};

use crate::served::{Output, ServedModel, ServedTask};

/// The softmax of `logits` (the maximum is subtracted first, so large logits do not overflow).
/// Empty logits give an empty answer.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes as `(class, probability)`, most probable first (at most as
/// many as there are logits; ties keep the lower class first).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = softmax(logits).into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// `/v1/classify`'s option.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClassifyQuery {
    /// classes to return (default 5)
    #[param(minimum = 1)]
    pub top_k: Option<usize>,
}

/// One class and its softmax score.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClassScore {
    pub class_id: usize,
    pub class_name: String,
    pub score: f32,
}

/// `POST /v1/classify`: the top classes, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClassifyAnswer {
    pub model: String,
    pub top: Vec<ClassScore>,
}

/// Classification, served: the `top_k` most probable classes (at least one).
pub struct Classify;

impl ServedTask for Classify {
    const TASK: &'static str = "classification";
    const PATH: &'static str = "/v1/classify";
    const SUMMARY: &'static str = "Classification: the top-k classes with softmax scores";
    type Query = ClassifyQuery;
    /// How many classes to return.
    type Options = usize;
    type Error = Infallible;
    type Answer = ClassifyAnswer;

    fn options(_: &ServedModel, query: ClassifyQuery) -> Result<usize, Infallible> {
        Ok(query.top_k.unwrap_or(5).max(1))
    }

    fn answer(model: &ServedModel, k: usize, _: [usize; 2], output: Output) -> ClassifyAnswer {
        let top = top_k(&output.values, k)
            .into_iter()
            .map(|(c, p)| ClassScore {
                class_id: c,
                class_name: model.card.class_names[c].clone(),
                score: p,
            })
            .collect();
        ClassifyAnswer {
            model: model.name.to_string(),
            top,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 1000.0, 0.0]);
        assert!(
            (p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6,
            "{p:?}"
        );
        assert!(p[2] < 1e-30);
        assert!(softmax(&[]).is_empty());
    }

    #[test]
    fn top_k_ranks_and_truncates() {
        let top = top_k(&[0.1, 2.0, -1.0, 2.0], 3);
        let classes: Vec<usize> = top.iter().map(|t| t.0).collect();
        assert_eq!(classes, [1, 3, 0]);
        assert!(top[0].1 > top[2].1);
        assert_eq!(top_k(&[0.0, 1.0], 10).len(), 2);
    }
}
