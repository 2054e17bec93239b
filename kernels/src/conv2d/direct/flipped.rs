//! The input gradient of a stride-1 convolution, as a convolution itself.
//!
//! With stride 1 the input gradient is
//! `dx[c, y, x] = Σ_o Σ_(ky, kx) w[o, c, ky, kx] · dy[o, y + p_y − ky·d_y, x + p_x − kx·d_x]`:
//! the output gradient convolved with the kernel flipped along both spatial axes and its two
//! channel axes swapped, padded by `d·(k − 1) − p` on each side. One forward convolution of `dy`
//! then writes `dx`, through the direct forward where it applies. The col2im route instead
//! multiplies `Wᵀ · dy` into a patch matrix `kh·kw` times larger than `dx`, each value a sum of
//! only `out_channels` terms, and adds it back onto the image pixel by pixel.

use super::{Conv2dShape, MIN_PLANE, Plan};

/// The input gradient of a convolution of `shape` with weight `w`, given the output gradient,
/// where the direct forward computes it (see [`super::forward`]); `None` elsewhere.
pub(in crate::conv2d) fn input_grad(
    w: &[f32],
    out_grad: &[f32],
    shape: &Conv2dShape,
) -> Option<Vec<f32>> {
    // Small maps never take the direct route: leave before copying the weight.
    let flipped = flipped_shape(shape).filter(|flipped| flipped.out_plane() >= MIN_PLANE)?;
    let weight = flipped_weight(w, shape);
    let plan = Plan::new(&flipped, &weight);
    let (per_part, _) = flipped.split();
    super::forward::forward(out_grad, &plan, per_part)
}

/// The convolution of the output gradient that gives the input gradient, where there is one:
/// stride 1 on both axes, and no more padding than the kernel spans (`p ≤ d·(k − 1)`).
fn flipped_shape(shape: &Conv2dShape) -> Option<Conv2dShape> {
    if shape.stride != [1, 1] {
        return None;
    }
    let mut padding = [(0, 0); 2];
    for (axis, pad) in padding.iter_mut().enumerate() {
        let span = shape.dilation[axis] * (shape.kernel[axis] - 1);
        let (begin, end) = shape.padding[axis];
        *pad = (span.checked_sub(begin)?, span.checked_sub(end)?);
    }
    Some(Conv2dShape {
        batch: shape.batch,
        in_channels: shape.out_channels,
        in_size: shape.out_size(),
        out_channels: shape.in_channels,
        kernel: shape.kernel,
        stride: [1, 1],
        padding,
        dilation: shape.dilation,
    })
}

/// `w'[c, o, ky, kx] = w[o, c, kh − 1 − ky, kw − 1 − kx]`: the weight of [`flipped_shape`].
fn flipped_weight(w: &[f32], shape: &Conv2dShape) -> Vec<f32> {
    let [kh, kw] = shape.kernel;
    let (inputs, outputs) = (shape.in_channels, shape.out_channels);
    let mut flipped = vec![0.0; w.len()];
    for o in 0..outputs {
        for c in 0..inputs {
            let from = &w[(o * inputs + c) * kh * kw..][..kh * kw];
            let to = &mut flipped[(c * outputs + o) * kh * kw..][..kh * kw];
            // Reversing the taps in kernel order flips both spatial axes.
            to.iter_mut()
                .zip(from.iter().rev())
                .for_each(|(t, f)| *t = *f);
        }
    }
    flipped
}
