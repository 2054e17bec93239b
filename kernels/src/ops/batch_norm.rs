//! Training-mode batch normalisation as a burn backend extension: one operation with its own
//! autodiff node, implemented on the flex backend by [`crate::batch_norm`](mod@crate::batch_norm).
//!
//! burn's flex backend composes `batch_norm_train` and its backward pass from general tensor
//! operations: dimension swaps that copy the activation, reductions and broadcasts, each a pass
//! over memory. Here the forward pass is two passes and the backward pass two.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension};
use burn::tensor::Shape;

use super::{slice, tensor, values};
use crate::batch_norm::{self, BatchNormShape};

/// The normalised output and the batch statistics it used, per channel.
pub struct Normalized<B: Backend> {
    pub output: FloatTensor<B>,
    pub mean: FloatTensor<B>,
    /// Biased variance, as burn's `batch_norm_train` returns it.
    pub variance: FloatTensor<B>,
}

/// The kernels on one backend's tensors.
pub trait BatchNormKernels: Backend {
    fn batch_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalized<Self>;

    /// `(dx, dγ, dβ)`.
    fn batch_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        statistics: [FloatTensor<Self>; 2],
        epsilon: f64,
        out_grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];
}

/// Batch normalisation with the batch's own statistics, as one differentiable operation on
/// burn's `Dispatch` backend. Returns `[output, mean, variance]`; only the output carries
/// gradients.
#[backend_extension(Flex, Autodiff)]
pub trait FastBatchNorm: Backend {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn layout(shape: &Shape) -> BatchNormShape {
    BatchNormShape {
        batch: shape[0],
        channels: shape[1],
        plane: shape.iter().skip(2).product(),
    }
}

impl BatchNormKernels for Flex {
    fn batch_norm_forward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> Normalized<Self> {
        let (x, shape) = values(&x);
        let (gamma, _) = values(&gamma);
        let (beta, _) = values(&beta);
        let out = batch_norm::forward(
            slice(&x),
            slice(&gamma),
            slice(&beta),
            epsilon,
            &layout(&shape),
        );
        let channels = shape[1];
        Normalized {
            output: tensor(out.output, shape),
            mean: tensor(out.mean, [channels]),
            variance: tensor(out.variance, [channels]),
        }
    }

    fn batch_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        [mean, variance]: [FlexTensor; 2],
        epsilon: f64,
        out_grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        let (x, shape) = values(&x);
        let (gamma, _) = values(&gamma);
        let (mean, _) = values(&mean);
        let (variance, _) = values(&variance);
        let (out_grad, _) = values(&out_grad);
        let (dx, dgamma, dbeta) = batch_norm::backward(
            slice(&x),
            slice(&gamma),
            slice(&mean),
            slice(&variance),
            epsilon,
            slice(&out_grad),
            &layout(&shape),
        );
        let channels = shape[1];
        [
            tensor(dx, shape),
            tensor(dgamma, [channels]),
            tensor(dbeta, [channels]),
        ]
    }
}

impl FastBatchNorm for Flex {
    fn fast_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let out = Self::batch_norm_forward(x, gamma, beta, epsilon);
        (out.output, out.mean, out.variance)
    }
}

/// The autodiff node: keeps the input, γ and the batch statistics.
#[derive(Debug)]
struct FastBatchNormBackward;

impl<B: BatchNormKernels> Backward<B, 3> for FastBatchNormBackward {
    type State = (NodeId, NodeId, [B::FloatTensorPrimitive; 2], f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let out_grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, statistics, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
        let [dx, dgamma, dbeta] = B::batch_norm_backward(x, gamma, statistics, epsilon, out_grad);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: BatchNormKernels, C: CheckpointStrategy> FastBatchNorm for Autodiff<B, C> {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let out = B::batch_norm_forward(
            Self::inner(x.clone()),
            Self::inner(gamma.clone()),
            Self::inner(beta.clone()),
            epsilon,
        );
        let statistics = [out.mean.clone(), out.variance.clone()];
        let output = match FastBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                prep.finish((x_state, gamma_state, statistics, epsilon), out.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(out.output),
        };
        (
            output,
            Self::from_inner(out.mean),
            Self::from_inner(out.variance),
        )
    }
}
