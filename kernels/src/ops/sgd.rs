//! The SGD update as a burn backend extension on the flex backend: one pass over a parameter,
//! its gradient and its velocity, written in place where the parameter's and the velocity's
//! buffers are not shared (burn's `Sgd` makes about seven passes, each into a new tensor).

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, TensorMetadata, backend_extension};

use super::{dense, slice, values};

/// The update of one parameter, `f32` on the flex backend.
#[backend_extension(Flex)]
pub trait FastSgd: Backend {
    /// `g = grad + weight_decay · param`; `velocity = g` on the first step (`velocity` is
    /// `None`), `g + momentum · velocity` after; `param -= lr · velocity`. Returns the new
    /// parameter and velocity.
    fn fast_sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        hyper: SgdHyper,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The scalars of one update. `first` marks the first step, whose `velocity` argument is
/// ignored (any tensor of the parameter's shape does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdHyper {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub first: bool,
}

impl FastSgd for Flex {
    fn fast_sgd_step(
        param: FlexTensor,
        grad: FlexTensor,
        velocity: FlexTensor,
        hyper: SgdHyper,
    ) -> (FlexTensor, FlexTensor) {
        let mut param = dense(param);
        let mut velocity = if hyper.first {
            FlexTensor::zeros(param.shape(), param.dtype())
        } else {
            dense(velocity)
        };
        let (grad, _) = values(&grad);
        let g = slice(&grad);
        // Copy-on-write: a buffer still shared elsewhere is copied once here.
        let v = velocity.storage_mut::<f32>();
        let w = param.storage_mut::<f32>();
        assert!(
            w.len() == g.len() && v.len() == g.len(),
            "SGD on tensors of different sizes"
        );
        crate::sgd::update(w, g, v, &hyper);
        (param, velocity)
    }
}
