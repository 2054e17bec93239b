//! The convolution as a burn backend extension: [`FastConv`] is one operation to burn's
//! `Dispatch`, implemented on the flex backend by [`crate::conv2d`](mod@crate::conv2d) and differentiated by its own
//! autodiff node, whose backward pass calls the matching gradient kernels.
//!
//! burn's own flex convolution is correct but spends its time elsewhere: it converts each
//! input to channels-last one element at a time on a single thread, and differentiates the
//! weight as a convolution whose "kernel" is the whole output gradient (a matrix product only
//! nine columns wide for a 3×3 kernel). This module replaces neither: it is selected only where
//! [`crate::conv2d()`] says so.

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
use crate::conv2d::{self, Conv2dShape};

/// Stride, padding and dilation of a convolution (`groups = 1`, no bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub stride: [usize; 2],
    /// `(begin, end)` padding of each spatial axis.
    pub padding: [(usize, usize); 2],
    pub dilation: [usize; 2],
}

impl ConvGeometry {
    fn shape(&self, x: &Shape, weight: &Shape) -> Conv2dShape {
        Conv2dShape {
            batch: x[0],
            in_channels: x[1],
            in_size: [x[2], x[3]],
            out_channels: weight[0],
            kernel: [weight[2], weight[3]],
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }
}

/// The three kernels on one backend's tensors: forward, input gradient, weight gradient.
pub trait ConvKernels: Backend {
    fn conv2d_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    fn conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        out_grad: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        out_grad: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
}

/// The convolution as one differentiable operation on burn's `Dispatch` backend.
#[backend_extension(Flex, Autodiff)]
pub trait FastConv: Backend {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
}

impl ConvKernels for Flex {
    fn conv2d_forward(x: FlexTensor, weight: FlexTensor, geometry: ConvGeometry) -> FlexTensor {
        let (x, x_shape) = values(&x);
        let (weight, w_shape) = values(&weight);
        let shape = geometry.shape(&x_shape, &w_shape);
        let [out_h, out_w] = shape.out_size();
        let out = conv2d::forward(slice(&x), slice(&weight), &shape);
        tensor(out, [shape.batch, shape.out_channels, out_h, out_w])
    }

    fn conv2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        out_grad: FlexTensor,
        geometry: ConvGeometry,
    ) -> FlexTensor {
        gradient(x, weight, out_grad, geometry, Wrt::Input)
    }

    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        out_grad: FlexTensor,
        geometry: ConvGeometry,
    ) -> FlexTensor {
        gradient(x, weight, out_grad, geometry, Wrt::Weight)
    }
}

/// Which gradient [`gradient`] computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrt {
    Input,
    Weight,
}

fn gradient(
    x: FlexTensor,
    weight: FlexTensor,
    out_grad: FlexTensor,
    geometry: ConvGeometry,
    wrt: Wrt,
) -> FlexTensor {
    let (x, x_shape) = values(&x);
    let (weight, w_shape) = values(&weight);
    let (out_grad, _) = values(&out_grad);
    let shape = geometry.shape(&x_shape, &w_shape);
    let (input, weight) = conv2d::backward(
        slice(&x),
        slice(&weight),
        slice(&out_grad),
        &shape,
        wrt == Wrt::Input,
        wrt == Wrt::Weight,
    );
    match wrt {
        Wrt::Input => tensor(input.expect("asked for"), x_shape),
        Wrt::Weight => tensor(weight.expect("asked for"), w_shape),
    }
}

impl FastConv for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, geometry: ConvGeometry) -> FlexTensor {
        Self::conv2d_forward(x, weight, geometry)
    }
}

/// The autodiff node: keeps the input and the weight, and asks the inner backend's kernels for
/// whichever of their gradients the graph needs.
#[derive(Debug)]
struct FastConvBackward;

impl<B: ConvKernels> Backward<B, 2> for FastConvBackward {
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let out_grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, geometry) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            let grad = B::conv2d_input_grad(x.clone(), weight.clone(), out_grad.clone(), geometry);
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_weight {
            let grad = B::conv2d_weight_grad(x, weight, out_grad, geometry);
            grads.register::<B>(node.id, grad);
        }
    }
}

impl<B: ConvKernels, C: CheckpointStrategy> FastConv for Autodiff<B, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        let forward = |x: &FloatTensor<Self>, weight: &FloatTensor<Self>| {
            B::conv2d_forward(
                Self::inner(x.clone()),
                Self::inner(weight.clone()),
                geometry,
            )
        };
        match FastConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = forward(&x, &weight);
                prep.finish((x_state, weight_state, geometry), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &weight)),
        }
    }
}
