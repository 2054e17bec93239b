//! 2-D convolution on `f32` NCHW buffers: forward, and the input and weight gradients in one
//! pass, each as one matrix product per group of images (im2col + `gemm`).
//!
//! For a group of `n` images the patches form a `[patch_len, n · out_plane]` matrix (`cols`,
//! one row per input channel and kernel offset, one column per output pixel). Then
//!
//! - forward: `out = W · cols` (`[out_channels, patch_len] · [patch_len, columns]`);
//! - input gradient: `dcols = Wᵀ · dy`, folded back onto the image (col2im);
//! - weight gradient: `dW += dy · colsᵀ`, summed over the groups.
//!
//! Kernel offsets that read only padding for every output pixel (eight of the nine taps of a
//! 3×3 convolution over a 1×1 map) are left out of the products, with the weight restricted to
//! the rest ([`Plan`]).
//!
//! Images are split into a few parts per thread (fewer where feature maps are small, so that a
//! part holds `MIN_PART_COLUMNS` output pixels; `gemm` then uses the idle threads itself); each
//! part is one rayon task that walks its images in groups wide enough (`TARGET_COLUMNS`) to keep
//! `gemm` efficient, and keeps its own buffers and weight-gradient sum. The sum
//! over parts is taken in a fixed order, so results depend on the thread count but not on
//! scheduling.

use rayon::prelude::*;

use patches::{add_cols, fill_cols};
use plan::{Group, Plan};
use transpose::transpose;

mod direct;
mod patches;
mod plan;
#[cfg(test)]
mod tests;
mod transpose;

/// Output pixels per matrix product below which images are grouped into one product.
const TARGET_COLUMNS: usize = 256;
/// Output pixels per part at least: the weight gradient's product sums over a part's pixels,
/// and a shallow sum spends its time reading and writing the gradient, not multiplying.
const MIN_PART_COLUMNS: usize = 512;
/// Parts per rayon thread: more than one lets a thread that finishes early take another.
const PARTS_PER_THREAD: usize = 2;

/// The geometry of one convolution: `groups = 1`, input `[batch, in_channels, h, w]`, weight
/// `[out_channels, in_channels, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `(begin, end)` padding of each spatial axis.
    pub padding: [(usize, usize); 2],
    pub dilation: [usize; 2],
}

impl Conv2dShape {
    /// Height and width of the output.
    pub fn out_size(&self) -> [usize; 2] {
        std::array::from_fn(|d| {
            let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
            let padded = self.in_size[d] + self.padding[d].0 + self.padding[d].1;
            if padded < span {
                0
            } else {
                (padded - span) / self.stride[d] + 1
            }
        })
    }

    fn in_plane(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_plane(&self) -> usize {
        let [h, w] = self.out_size();
        h * w
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_plane()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.kernel[0] * self.kernel[1]
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_plane()
    }

    /// Images per rayon part, and images per matrix product within a part.
    fn split(&self) -> (usize, usize) {
        let threads = rayon::current_num_threads().max(1);
        let plane = self.out_plane().max(1);
        let per_part = self
            .batch
            .div_ceil(threads * PARTS_PER_THREAD)
            .max(MIN_PART_COLUMNS.div_ceil(plane))
            .clamp(1, self.batch.max(1));
        let per_product = TARGET_COLUMNS.div_ceil(plane);
        (per_part, per_product.clamp(1, per_part))
    }

    /// Matrix products run on one thread each when the parts already fill the machine.
    fn parallelism(&self, per_part: usize) -> gemm::Parallelism {
        if self.batch.div_ceil(per_part) >= rayon::current_num_threads() {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(0)
        }
    }
}

/// `out = conv2d(x, w)`, `[batch, out_channels, oh, ow]`.
pub fn forward(x: &[f32], w: &[f32], shape: &Conv2dShape) -> Vec<f32> {
    assert_eq!(x.len(), shape.input_len(), "conv2d input length");
    assert_eq!(w.len(), shape.weight_len(), "conv2d weight length");
    if shape.output_len() == 0 {
        return Vec::new();
    }
    let plan = Plan::new(shape, w);
    let (per_part, per_product) = shape.split();
    if let Some(out) = direct::forward::forward(x, &plan, per_part) {
        return out;
    }
    let mut out = vec![0.0; shape.output_len()];
    let parallelism = shape.parallelism(per_part);
    let in_image = shape.in_channels * shape.in_plane();
    let out_image = shape.out_channels * shape.out_plane();
    out.par_chunks_mut(per_part * out_image)
        .zip(x.par_chunks(per_part * in_image))
        .for_each(|(out, x)| {
            let mut buffers = Buffers::default();
            for (out, x) in out
                .chunks_mut(per_product * out_image)
                .zip(x.chunks(per_product * in_image))
            {
                forward_group(x, out, &plan, &mut buffers, parallelism);
            }
        });
    out
}

/// The gradients of [`forward`] with respect to its input and its weight, each computed only
/// when asked for.
pub fn backward(
    x: &[f32],
    w: &[f32],
    out_grad: &[f32],
    shape: &Conv2dShape,
    want_input: bool,
    want_weight: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(x.len(), shape.input_len(), "conv2d input length");
    assert_eq!(w.len(), shape.weight_len(), "conv2d weight length");
    assert_eq!(
        out_grad.len(),
        shape.output_len(),
        "conv2d output-gradient length"
    );
    if shape.output_len() == 0 || !(want_input || want_weight) {
        let x_grad = want_input.then(|| vec![0.0; x.len()]);
        return (x_grad, want_weight.then(|| vec![0.0; w.len()]));
    }
    let plan = Plan::new(shape, w);
    let (per_part, per_product) = shape.split();
    // Shifted convolutions on large maps need no patches for the weight gradient, nor for the
    // input gradient with few output channels; the pass below computes what is left.
    let direct_x = want_input
        .then(|| direct::flipped::input_grad(w, out_grad, shape))
        .flatten();
    let direct_w = want_weight
        .then(|| direct::weight_grad::weight_grad(x, out_grad, &plan, per_part))
        .flatten()
        .map(|live| plan.full_weight_grad(live));
    let want_input = want_input && direct_x.is_none();
    let want_weight = want_weight && direct_w.is_none();
    if !(want_input || want_weight) {
        return (direct_x, direct_w);
    }
    let mut x_grad = want_input.then(|| vec![0.0; x.len()]);
    let parallelism = shape.parallelism(per_part);
    let in_image = shape.in_channels * shape.in_plane();
    let out_image = shape.out_channels * shape.out_plane();
    let parts = shape.batch.div_ceil(per_part);
    let x_grad_parts: Vec<Option<&mut [f32]>> = match x_grad.as_mut() {
        Some(grad) => grad.chunks_mut(per_part * in_image).map(Some).collect(),
        None => (0..parts).map(|_| None).collect(),
    };
    let weight_grads: Vec<Option<Vec<f32>>> = x_grad_parts
        .into_par_iter()
        .zip(x.par_chunks(per_part * in_image))
        .zip(out_grad.par_chunks(per_part * out_image))
        .map(|((mut x_grad, x), out_grad)| {
            let mut buffers = Buffers::default();
            let mut w_grad = WeightGrad::new(want_weight, shape.out_channels * plan.patch_len());
            for (index, (x, out_grad)) in x
                .chunks(per_product * in_image)
                .zip(out_grad.chunks(per_product * out_image))
                .enumerate()
            {
                let x_grad = x_grad.as_deref_mut().map(|grad| {
                    let start = index * per_product * in_image;
                    &mut grad[start..start + x.len()]
                });
                backward_group(
                    x,
                    out_grad,
                    &plan,
                    x_grad,
                    &mut w_grad,
                    &mut buffers,
                    parallelism,
                );
            }
            w_grad.sum
        })
        .collect();
    let w_grad =
        sum_parts(weight_grads.into_iter().flatten()).map(|sum| plan.full_weight_grad(sum));
    (x_grad.or(direct_x), w_grad.or(direct_w))
}

/// The parts' weight-gradient sums added in a fixed order into the first, so that the result
/// does not depend on which thread finished first; `None` for no parts.
fn sum_parts(parts: impl IntoIterator<Item = Vec<f32>>) -> Option<Vec<f32>> {
    let mut parts = parts.into_iter();
    let mut sum = parts.next()?;
    for part in parts {
        sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
    }
    Some(sum)
}

/// One part's weight-gradient sum: the first group's product is written, later ones added.
struct WeightGrad {
    wanted: bool,
    len: usize,
    sum: Option<Vec<f32>>,
}

impl WeightGrad {
    fn new(wanted: bool, len: usize) -> Self {
        Self {
            wanted,
            len,
            sum: None,
        }
    }
}

/// Scratch matrices reused across the groups of one part.
#[derive(Default)]
struct Buffers {
    cols: Vec<f32>,
    /// `cols` transposed (`[columns, patch_len]`), for the weight gradient.
    cols_t: Vec<f32>,
    product: Vec<f32>,
}

fn resized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..len]
}

/// Forward for a group of whole images (`x` and `out` hold the same images).
fn forward_group(
    x: &[f32],
    out: &mut [f32],
    plan: &Plan,
    buffers: &mut Buffers,
    parallelism: gemm::Parallelism,
) {
    let w = &plan.weight[..];
    let Group {
        images,
        plane,
        columns,
        patch_len,
        channels,
    } = plan.group(x.len());
    let cols = resized(&mut buffers.cols, patch_len * columns);
    fill_cols(x, plan, cols, columns);
    if images == 1 {
        // One image: its `[out_channels, plane]` output is the product itself.
        matmul(
            out,
            w,
            cols,
            [channels, patch_len, columns],
            false,
            parallelism,
        );
        return;
    }
    let product = resized(&mut buffers.product, channels * columns);
    matmul(
        product,
        w,
        cols,
        [channels, patch_len, columns],
        false,
        parallelism,
    );
    for image in 0..images {
        for channel in 0..channels {
            let from = channel * columns + image * plane;
            let to = (image * channels + channel) * plane;
            out[to..to + plane].copy_from_slice(&product[from..from + plane]);
        }
    }
}

/// Backward for a group of whole images: adds this group's weight gradient to `w_grad` and
/// writes its input gradient to `x_grad`.
#[allow(clippy::too_many_arguments)]
fn backward_group(
    x: &[f32],
    out_grad: &[f32],
    plan: &Plan,
    x_grad: Option<&mut [f32]>,
    w_grad: &mut WeightGrad,
    buffers: &mut Buffers,
    parallelism: gemm::Parallelism,
) {
    let w = &plan.weight[..];
    let Group {
        images,
        plane,
        columns,
        patch_len,
        channels,
    } = plan.group(x.len());
    // The output gradient as `[out_channels, columns]`: one image already is.
    let dy: &[f32] = if images == 1 {
        out_grad
    } else {
        let gathered = resized(&mut buffers.product, channels * columns);
        for image in 0..images {
            for channel in 0..channels {
                let from = (image * channels + channel) * plane;
                let to = channel * columns + image * plane;
                gathered[to..to + plane].copy_from_slice(&out_grad[from..from + plane]);
            }
        }
        gathered
    };
    let cols = resized(&mut buffers.cols, patch_len * columns);
    if w_grad.wanted {
        fill_cols(x, plan, cols, columns);
        // gemm computes a row-major product as its transpose, `dWᵀ = cols · dyᵀ`, and packs a
        // left operand that is not contiguous along its rows with one scalar load per value:
        // given `cols` as it is, that packing took longer than the product itself wherever
        // `out_channels` is small. Transposed once (blocked), it needs no packing.
        let cols_t = resized(&mut buffers.cols_t, patch_len * columns);
        transpose(cols, cols_t, patch_len, columns);
        let accumulate = w_grad.sum.is_some();
        let sum = w_grad.sum.get_or_insert_with(|| vec![0.0; w_grad.len]);
        // dW[o, r] (+)= Σ_j dy[o, j] · cols_t[j, r]
        gemm_raw(
            [channels, patch_len, columns],
            (sum.as_mut_ptr(), patch_len as isize, 1),
            (dy.as_ptr(), columns as isize, 1),
            (cols_t.as_ptr(), patch_len as isize, 1),
            accumulate,
            parallelism,
        );
    }
    if let Some(x_grad) = x_grad {
        // dcols[r, j] = Σ_o w[o, r] · dy[o, j]
        gemm_raw(
            [patch_len, columns, channels],
            (cols.as_mut_ptr(), columns as isize, 1),
            (w.as_ptr(), 1, patch_len as isize),
            (dy.as_ptr(), columns as isize, 1),
            false,
            parallelism,
        );
        // `x_grad` is this group's part of a zeroed buffer, written by no other group.
        add_cols(cols, plan, x_grad, columns);
    }
}

/// `dst = lhs · rhs` for row-major `[m, k] · [k, n]`, or `dst += …` with `accumulate`.
fn matmul(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    [m, k, n]: [usize; 3],
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    gemm_raw(
        [m, n, k],
        (dst.as_mut_ptr(), n as isize, 1),
        (lhs.as_ptr(), k as isize, 1),
        (rhs.as_ptr(), n as isize, 1),
        accumulate,
        parallelism,
    );
}

/// `gemm` with each matrix given as (pointer, row stride, column stride); sizes `[m, n, k]`.
fn gemm_raw(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, isize, isize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: every caller passes pointers into live buffers sized for these strides and
    // sizes (`[m, k]`, `[k, n]` and `[m, n]` matrices), and `dst` overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.2,
            dst.1,
            accumulate,
            lhs.0,
            lhs.2,
            lhs.1,
            rhs.0,
            rhs.2,
            rhs.1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
