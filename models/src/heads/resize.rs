//! Bilinear resizing (corners aligned) that trains on every backend.
//!
//! burn's GPU backends (`wgpu`, `vulkan`, `cuda`: burn-cubecl 0.22) run bilinear `interpolate`
//! forward but have no backward pass for it; only nearest-neighbour resizing has one there. So a
//! detection or segmentation head could not take a single training step on a GPU
//! (train-cli/tests/gpu_path.rs found it). Bilinear resizing is separable and linear: along each axis
//! every output is a weighted sum of two inputs. On a GPU training device it is therefore computed
//! as two matrix products with those weights, the same function, whose gradient every backend
//! has. Everywhere else (the CPU, inference, and the graph capture of ONNX export, where it
//! becomes one `Resize`) it is burn's `interpolate` itself.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};

/// `x` resized to `size` (height, width) by bilinear interpolation with aligned corners, as
/// burn's `interpolate` with [`InterpolateMode::Bilinear`] computes it.
pub fn bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let device = x.device();
    if crate::layers::trains_on_gpu(&device) {
        return by_matmul(x, size);
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size(size),
    )
}

/// The same resize as two matrix products: `rows · x · colsᵀ` for every image and channel.
fn by_matmul(x: Tensor<4>, [height, width]: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let rows = weights(h, height, &device).unsqueeze::<4>(); // [1, 1, height, h]
    let cols = weights(w, width, &device).transpose().unsqueeze::<4>(); // [1, 1, w, width]
    rows.matmul(x.matmul(cols))
}

/// The `out × len` matrix that interpolates a line of `len` values at `out` points, corners
/// aligned: output `o` samples the input at `o · (len − 1) / (out − 1)`.
fn weights(len: usize, out: usize, device: &Device) -> Tensor<2> {
    let ratio = (len as f64 - 1.0) / (out.max(2) - 1) as f64;
    let mut matrix = vec![0.0f32; out * len];
    for o in 0..out {
        let at = o as f64 * ratio;
        let low = (at.floor() as usize).min(len - 1);
        let high = (low + 1).min(len - 1);
        let weight = (at - low as f64) as f32;
        matrix[o * len + low] += 1.0 - weight;
        matrix[o * len + high] += weight;
    }
    Tensor::from_data(TensorData::new(matrix, [out, len]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn matrix_products_resize_as_interpolate_does() {
        let device = Device::flex();
        device.seed(7);
        for ([h, w], size) in [
            ([2, 3], [8, 8]),
            ([4, 4], [4, 4]),
            ([5, 7], [16, 9]),
            ([8, 8], [3, 2]),
            ([1, 6], [4, 1]),
        ] {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            let expected = bilinear(x.clone(), size);
            let actual = by_matmul(x, size);
            assert_eq!(expected.dims(), actual.dims());
            let worst = (expected - actual).abs().max().into_scalar::<f32>();
            assert!(worst < 1e-5, "{h}x{w} -> {size:?}: {worst}");
        }
    }

    #[test]
    fn the_gradient_is_interpolate_s() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let x = Tensor::<4>::random([1, 2, 3, 5], Distribution::Normal(0.0, 1.0), &device);
        let probe = Tensor::<4>::random([1, 2, 7, 6], Distribution::Normal(0.0, 1.0), &device);
        let gradient = |resize: fn(Tensor<4>, [usize; 2]) -> Tensor<4>| {
            let x = x.clone().require_grad();
            let grads = (resize(x.clone(), [7, 6]) * probe.clone()).sum().backward();
            x.grad(&grads).expect("x has a gradient")
        };
        let worst = (gradient(bilinear) - gradient(by_matmul))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(worst < 1e-5, "{worst}");
    }
}
