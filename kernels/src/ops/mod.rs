//! The kernels as burn operations: backend extensions implemented on the flex backend, each with
//! its own autodiff node.

pub mod batch_norm;
pub mod conv2d;
pub mod ema;
pub mod sgd;

use burn::backend::flex::FlexTensor;
use burn::backend::{DType, TensorData, TensorMetadata};
use burn::tensor::Shape;

/// A flex tensor in row-major order (copied only when strided), and its shape.
fn values(tensor: &FlexTensor) -> (FlexTensor, Shape) {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "the fused kernels take f32 tensors"
    );
    let contiguous = tensor.to_contiguous();
    let shape = contiguous.shape();
    (contiguous, shape)
}

/// The `f32` values of a tensor [`values`] returned.
fn slice(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("a contiguous f32 tensor has a slice")
}

fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `tensor` itself when its buffer holds exactly its values in order, else a copy that does.
fn dense(tensor: FlexTensor) -> FlexTensor {
    let whole = tensor.is_contiguous()
        && tensor.layout().start_offset() == 0
        && tensor.bytes().len() == tensor.layout().num_elements() * std::mem::size_of::<f32>();
    if whole {
        tensor
    } else {
        tensor.to_contiguous()
    }
}
