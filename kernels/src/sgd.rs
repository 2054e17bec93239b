//! SGD with momentum and weight decay, with PyTorch's semantics (no dampening), as a burn
//! [`Optimizer`]: one fused pass per parameter on flex `f32` tensors ([`ops::sgd`]), burn's
//! tensor operations elsewhere. Both compute the same values in the same order, so a run gives
//! the same numbers on either path, and its state records are those of burn's own
//! `Sgd` (`momentum.velocity` per parameter): checkpoints of either load in the other.
//!
//! [`ops::sgd`]: crate::ops::sgd

use burn::backend::{Dispatch, DispatchDevice};
use burn::optim::{
    LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::ops::sgd::{FastSgd, SgdHyper};

/// Values per rayon task: below this a parameter is updated on the calling thread.
const CHUNK: usize = 1 << 16;

/// The optimizer's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedSgd {
    pub momentum: f32,
    pub weight_decay: f32,
}

impl FusedSgd {
    /// A [`ModuleOptimizer`] applying it to every parameter of a module.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

/// One parameter's state: its velocity, after the first step.
#[derive(Clone)]
pub struct Velocity<const D: usize> {
    velocity: Option<Tensor<D>>,
}

/// burn's `SgdState` nests the velocity as `momentum.velocity`; the same names here.
const MOMENTUM: &str = "momentum";
const VELOCITY: &str = "velocity";

impl<const D: usize> RecordState for Velocity<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, MOMENTUM),
                VELOCITY,
                velocity.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity = src
            .take_tensor(&join_path(prefix, MOMENTUM), VELOCITY)
            .map(|data| Tensor::from_data(data, device));
        Some(Self { velocity })
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = Velocity<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        let (tensor, velocity) = if crate::enabled() && on_flex_f32(&tensor, &grad) {
            let hyper = SgdHyper {
                lr: lr as f32,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                first: velocity.is_none(),
            };
            let previous = velocity.unwrap_or_else(|| grad.clone());
            let (tensor, velocity) = <Dispatch as FastSgd>::fast_sgd_step(
                tensor.into_dispatch(),
                grad.into_dispatch(),
                previous.into_dispatch(),
                hyper,
            );
            (
                Tensor::from_dispatch(tensor),
                Tensor::from_dispatch(velocity),
            )
        } else {
            // burn's `Sgd` with dampening 0, operation for operation.
            let grad = tensor.clone().mul_scalar(self.weight_decay).add(grad);
            let velocity = match velocity {
                Some(v) => grad.mul_scalar(1.0).add(v.mul_scalar(self.momentum)),
                None => grad,
            };
            (tensor - velocity.clone().mul_scalar(lr), velocity)
        };
        let state = Velocity {
            velocity: Some(velocity),
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Velocity {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}

fn on_flex_f32<const D: usize>(tensor: &Tensor<D>, grad: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && matches!(
            tensor.device().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The update on slices: `g = grad + wd·w`, `v = g` (first step) or `g·1 + m·v`, `w -= lr·v`,
/// each value once, in the order burn's `Sgd` computes it.
pub(crate) fn update(w: &mut [f32], grad: &[f32], v: &mut [f32], hyper: &SgdHyper) {
    let SgdHyper {
        lr,
        momentum,
        weight_decay,
        first,
    } = *hyper;
    let one = |w: &mut f32, g: f32, v: &mut f32| {
        let g = *w * weight_decay + g;
        *v = if first { g } else { g * 1.0 + *v * momentum };
        *w -= *v * lr;
    };
    if w.len() < CHUNK {
        w.iter_mut()
            .zip(grad)
            .zip(v.iter_mut())
            .for_each(|((w, &g), v)| one(w, g, v));
        return;
    }
    w.par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|((w, g), v)| {
            w.iter_mut()
                .zip(g)
                .zip(v.iter_mut())
                .for_each(|((w, &g), v)| one(w, g, v));
        });
}
