//! InfoNCE over a key queue, with Exemplar's label masking.
//!
//! For queries `q` and their positive keys `k⁺` (both `[N, D]`, L2-normalised) and a queue of
//! `K` keys, the logits are `[q·k⁺, q·queue₁, …, q·queue_K] / τ` with the positive at index 0,
//! and the loss is the cross-entropy towards index 0, averaged over the batch (MoCo).
//!
//! Exemplar (Zhao et al., ICLR 2021) keeps everything else and removes from each query's
//! negatives the queue entries of the query's own class: their logits are set to a large
//! negative value before the softmax, so they receive zero probability and zero gradient.
//! The positive is never masked. Same-class samples are not pulled together (that would be
//! SupCon); they are only no longer pushed apart.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Int, Tensor};

use super::queue::UNLABELLED;

/// What a masked logit is set to. Finite, so that a row whose negatives are all masked still has
/// a well-defined softmax (probability 1 on the positive, loss 0, gradient 0).
const MASKED_LOGIT: f32 = -1.0e9;

/// The loss and the logits it was computed from (for the contrastive accuracy monitor).
#[derive(Debug, Clone)]
pub struct ContrastiveLoss {
    /// Mean cross-entropy over the batch, a 1-element tensor.
    pub loss: Tensor<1>,
    /// `[N, 1 + K]`, positive first, masked entries at a large negative value.
    pub logits: Tensor<2>,
    /// Which queue entries were masked, `[N, K]` (`None` for MoCo).
    pub mask: Option<Tensor<2, Bool>>,
}

/// Computes the MoCo loss, or the Exemplar loss when `labels` is given.
///
/// * `query`, `positive`: `[N, D]`, L2-normalised; `positive` is treated as a constant (detach it
///   if it came from a tracked graph; the key encoder's outputs are not tracked).
/// * `queue`: `[K, D]`, L2-normalised.
/// * `labels`: `(query_labels [N], queue_labels [K])` for Exemplar. Queries labelled
///   [`UNLABELLED`] mask nothing, and unlabelled queue entries are never masked.
pub fn contrastive_loss(
    query: Tensor<2>,
    positive: Tensor<2>,
    queue: Tensor<2>,
    labels: Option<(Tensor<1, Int>, Tensor<1, Int>)>,
    temperature: f64,
) -> ContrastiveLoss {
    let [n, _] = query.dims();
    let [k, _] = queue.dims();
    let positive_logits = (query.clone() * positive).sum_dim(1);
    let negative_logits = query.matmul(queue.transpose());
    let mut negatives = negative_logits / temperature;
    let mask = labels
        .map(|(query_labels, queue_labels)| same_class_mask(query_labels, queue_labels, n, k));
    if let Some(mask) = &mask {
        negatives = negatives.mask_fill(mask.clone(), MASKED_LOGIT);
    }
    let logits = Tensor::cat(vec![positive_logits / temperature, negatives], 1);
    let log_probs = log_softmax(logits.clone(), 1);
    let loss = log_probs.slice([0..n, 0..1]).neg().mean();
    ContrastiveLoss { loss, logits, mask }
}

/// `mask[i, j]` is true when queue entry `j` has query `i`'s class.
fn same_class_mask(
    query_labels: Tensor<1, Int>,
    queue_labels: Tensor<1, Int>,
    n: usize,
    k: usize,
) -> Tensor<2, Bool> {
    // An unlabelled query must match nothing, not the unlabelled queue slots: give it a value
    // no queue entry can hold.
    let unlabelled = query_labels.clone().equal_elem(UNLABELLED);
    let query_labels = query_labels.mask_fill(unlabelled, UNLABELLED - 1);
    let rows = query_labels.reshape([n, 1]).expand([n, k]);
    let cols = queue_labels.reshape([1, k]).expand([n, k]);
    rows.equal(cols)
}

/// Fraction of queries whose positive has the highest logit (MoCo's "Acc@1" monitor).
pub fn positive_top1(logits: Tensor<2>) -> f32 {
    let [n, _] = logits.dims();
    let hits = logits
        .argmax(1)
        .equal_elem(0)
        .int()
        .sum()
        .into_scalar::<i64>();
    hits as f32 / n.max(1) as f32
}
