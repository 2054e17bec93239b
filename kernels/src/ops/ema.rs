//! The key encoder's momentum update as a burn backend extension on the flex backend: one pass
//! over a parameter and its query counterpart, written in place where the key's buffer is not
//! shared (burn's operations make three passes, each into a new tensor).

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};

use super::{dense, slice, values};

/// `key · momentum + query · (1 − momentum)`, `f32` on the flex backend.
#[backend_extension(Flex)]
pub trait FastEma: Backend {
    fn fast_ema(
        key: FloatTensor<Self>,
        query: FloatTensor<Self>,
        momentum: EmaWeights,
    ) -> FloatTensor<Self>;
}

/// The two weights as burn's scalar operations would round them to `f32`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmaWeights {
    pub key: f32,
    pub query: f32,
}

impl FastEma for Flex {
    fn fast_ema(key: FlexTensor, query: FlexTensor, weights: EmaWeights) -> FlexTensor {
        let mut key = dense(key);
        let (query, _) = values(&query);
        let q = slice(&query);
        // Copy-on-write: a buffer still shared elsewhere is copied once here.
        let k = key.storage_mut::<f32>();
        assert_eq!(
            k.len(),
            q.len(),
            "momentum update of tensors of different sizes"
        );
        crate::ema::update(k, q, weights);
        key
    }
}
