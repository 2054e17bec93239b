//! The weighted k-nearest-neighbour classifier on L2-normalised features (Wu et al. 2018), the
//! standard monitor of contrastive pretraining: each of the k most similar memory-bank samples
//! votes for its class with weight `exp(similarity / T)`.

use burn::tensor::Device;
use serde::Serialize;

use super::features::Features;
use exemplar_models::encoder::l2_normalize;

#[derive(Debug, Clone, Serialize)]
pub struct KnnResult {
    pub top1: f64,
    pub k: usize,
    pub temperature: f32,
    pub bank_size: usize,
    pub queries: usize,
}

/// Classifies `queries` by their neighbours in `bank`.
pub fn knn_classify(
    bank: &Features,
    queries: &Features,
    num_classes: usize,
    k: usize,
    temperature: f32,
    device: &Device,
) -> KnnResult {
    let k = k.clamp(1, bank.len().max(1));
    let bank_t = l2_normalize(bank.tensor(device)).transpose();
    let mut correct = 0usize;
    const CHUNK: usize = 256;
    for start in (0..queries.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(queries.len());
        let rows = Features {
            values: queries.values[start * queries.dim..end * queries.dim].to_vec(),
            labels: queries.labels[start..end].to_vec(),
            dim: queries.dim,
        };
        let sims = l2_normalize(rows.tensor(device)).matmul(bank_t.clone());
        let (top, idx) = sims.topk_with_indices(k, 1);
        let weights: Vec<f32> = (top / temperature)
            .exp()
            .into_data()
            .iter::<f32>()
            .collect();
        let neighbours: Vec<i64> = idx.into_data().iter::<i64>().collect();
        for (row, &label) in rows.labels.iter().enumerate() {
            let mut votes = vec![0.0f32; num_classes.max(1)];
            for j in 0..k {
                let class = bank.labels[neighbours[row * k + j] as usize];
                if let Some(v) = votes.get_mut(class as usize) {
                    *v += weights[row * k + j];
                }
            }
            let predicted = argmax(&votes);
            correct += (predicted as i64 == label) as usize;
        }
    }
    KnnResult {
        top1: correct as f64 / queries.len().max(1) as f64,
        k,
        temperature,
        bank_size: bank.len(),
        queries: queries.len(),
    }
}

pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_vote_with_their_similarity() {
        let device = Device::flex();
        // Class 0 points along x, class 1 along y.
        let bank = Features {
            values: vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9],
            labels: vec![0, 0, 1, 1],
            dim: 2,
        };
        let queries = Features {
            values: vec![1.0, 0.2, 0.2, 1.0, 0.7, 0.6],
            labels: vec![0, 1, 1],
            dim: 2,
        };
        let result = knn_classify(&bank, &queries, 2, 2, 0.1, &device);
        // The third query is closer to class 0, so it is misclassified: 2 of 3.
        assert!((result.top1 - 2.0 / 3.0).abs() < 1e-9, "{result:?}");
        assert_eq!(result.k, 2);
    }
}
