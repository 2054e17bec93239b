//! The key encoder's momentum (exponential moving average) update of one parameter,
//! `key · m + query · (1 − m)`: one fused pass on flex `f32` tensors ([`ops::ema`]), burn's
//! tensor operations elsewhere. Both round the same operations in the same order, so either
//! path gives the same values.
//!
//! [`ops::ema`]: crate::ops::ema

use burn::backend::Dispatch;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use crate::ops::ema::{EmaWeights, FastEma};

/// Values per rayon task: below this a parameter is updated on the calling thread.
const CHUNK: usize = 1 << 16;

/// `key · momentum + query · (1 − momentum)`, detached, on `key`'s device (`query` is read
/// without its autodiff graph).
pub fn momentum_update<const D: usize>(
    key: Tensor<D>,
    query: Tensor<D>,
    momentum: f64,
) -> Tensor<D> {
    let fused = crate::enabled()
        && key.dtype() == DType::F32
        && query.dtype() == DType::F32
        && crate::on_flex(&key.device());
    if !fused {
        return (key.detach() * momentum + query * (1.0 - momentum)).detach();
    }
    let autodiff = key.is_autodiff();
    let weights = EmaWeights {
        key: momentum as f32,
        query: (1.0 - momentum) as f32,
    };
    let updated = Tensor::from_dispatch(<Dispatch as FastEma>::fast_ema(
        key.inner().into_dispatch(),
        query.inner().into_dispatch(),
        weights,
    ));
    if autodiff {
        updated.autodiff()
    } else {
        updated
    }
}

/// The update on slices, each value once: `k = k · w_k + q · w_q`.
pub(crate) fn update(key: &mut [f32], query: &[f32], weights: EmaWeights) {
    let EmaWeights { key: wk, query: wq } = weights;
    let run = |k: &mut [f32], q: &[f32]| {
        k.iter_mut()
            .zip(q)
            .for_each(|(k, &q)| *k = *k * wk + q * wq);
    };
    if key.len() < CHUNK {
        run(key, query);
        return;
    }
    key.par_chunks_mut(CHUNK)
        .zip(query.par_chunks(CHUNK))
        .for_each(|(k, q)| run(k, q));
}
