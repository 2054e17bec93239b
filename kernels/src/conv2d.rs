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

use std::borrow::Cow;

use rayon::prelude::*;

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
    let mut out = vec![0.0; shape.output_len()];
    if out.is_empty() {
        return out;
    }
    let plan = Plan::new(shape, w);
    let (per_part, per_product) = shape.split();
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
    let mut x_grad = want_input.then(|| vec![0.0; x.len()]);
    if shape.output_len() == 0 || !(want_input || want_weight) {
        return (x_grad, want_weight.then(|| vec![0.0; w.len()]));
    }
    let plan = Plan::new(shape, w);
    let (per_part, per_product) = shape.split();
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
    // The parts' sums, added in a fixed order into the first.
    let mut parts = weight_grads.into_iter().flatten();
    let w_grad = parts.next().map(|mut sum| {
        for part in parts {
            sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
        }
        plan.full_weight_grad(sum)
    });
    (x_grad, w_grad)
}

/// What one call computes with: the live kernel taps and the weight restricted to them.
struct Plan<'a> {
    shape: &'a Conv2dShape,
    /// Kernel offsets `[ky, kx]` that read at least one input pixel, in kernel order.
    taps: Vec<[usize; 2]>,
    /// `[out_channels, in_channels · taps]`: the weight itself when every tap is live.
    weight: Cow<'a, [f32]>,
}

impl<'a> Plan<'a> {
    fn new(shape: &'a Conv2dShape, w: &'a [f32]) -> Self {
        let [out_h, out_w] = shape.out_size();
        let live = |axis: usize, k: usize, out_len: usize| {
            let offset = (k * shape.dilation[axis]) as isize - shape.padding[axis].0 as isize;
            let (begin, end) =
                valid_outputs(out_len, shape.stride[axis], offset, shape.in_size[axis]);
            begin < end
        };
        let [kh, kw] = shape.kernel;
        let taps: Vec<[usize; 2]> = (0..kh)
            .filter(|&ky| live(0, ky, out_h))
            .flat_map(|ky| {
                (0..kw)
                    .filter(|&kx| live(1, kx, out_w))
                    .map(move |kx| [ky, kx])
            })
            .collect();
        let weight = if taps.len() == kh * kw {
            Cow::Borrowed(w)
        } else {
            let area = kh * kw;
            let rows = shape.out_channels * shape.in_channels;
            Cow::Owned(
                (0..rows)
                    .flat_map(|row| {
                        taps.iter()
                            .map(move |&[ky, kx]| w[row * area + ky * kw + kx])
                    })
                    .collect(),
            )
        };
        Self {
            shape,
            taps,
            weight,
        }
    }

    /// Rows of the patch matrix: input channels × live taps.
    fn patch_len(&self) -> usize {
        self.shape.in_channels * self.taps.len()
    }

    /// The weight gradient over every tap (zero for the dead ones), from the live taps' one.
    fn full_weight_grad(&self, live: Vec<f32>) -> Vec<f32> {
        let [kh, kw] = self.shape.kernel;
        if self.taps.len() == kh * kw {
            return live;
        }
        let mut full = vec![0.0; self.shape.weight_len()];
        for (row, values) in live.chunks(self.taps.len().max(1)).enumerate() {
            for (&[ky, kx], &v) in self.taps.iter().zip(values) {
                full[row * kh * kw + ky * kw + kx] = v;
            }
        }
        full
    }
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
    let shape = plan.shape;
    let w = &plan.weight[..];
    let images = x.len() / (shape.in_channels * shape.in_plane());
    let plane = shape.out_plane();
    let columns = images * plane;
    let patch_len = plan.patch_len();
    let cols = resized(&mut buffers.cols, patch_len * columns);
    fill_cols(x, plan, cols, columns);
    let channels = shape.out_channels;
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
    let shape = plan.shape;
    let w = &plan.weight[..];
    let images = x.len() / (shape.in_channels * shape.in_plane());
    let plane = shape.out_plane();
    let columns = images * plane;
    let patch_len = plan.patch_len();
    let channels = shape.out_channels;
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
        let accumulate = w_grad.sum.is_some();
        let sum = w_grad.sum.get_or_insert_with(|| vec![0.0; w_grad.len]);
        // dW[o, r] (+)= Σ_j dy[o, j] · cols[r, j]
        gemm_raw(
            [channels, patch_len, columns],
            (sum.as_mut_ptr(), patch_len as isize, 1),
            (dy.as_ptr(), columns as isize, 1),
            (cols.as_ptr(), 1, columns as isize),
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
        x_grad.fill(0.0);
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

/// The output positions `o` in `0..out_len` whose input index `o · stride + offset` falls
/// inside `0..in_len`.
fn valid_outputs(out_len: usize, stride: usize, offset: isize, in_len: usize) -> (usize, usize) {
    let stride = stride as isize;
    let first = if offset >= 0 {
        0
    } else {
        (-offset + stride - 1) / stride
    };
    let end = (in_len as isize - offset + stride - 1)
        .div_euclid(stride)
        .max(0);
    let end = (end as usize).min(out_len);
    ((first as usize).min(end), end)
}

/// Walks every (patch row, output row) pair of a group: `visit(row, out_y, in_y, xs)` with
/// `xs` the valid output columns and their first input column, `None` where the row reads
/// padding.
fn for_each_patch_row(
    plan: &Plan,
    mut visit: impl FnMut(usize, usize, usize, Option<(usize, (usize, usize))>),
) {
    let shape = plan.shape;
    let [out_h, out_w] = shape.out_size();
    for channel in 0..shape.in_channels {
        for (tap, &[ky, kx]) in plan.taps.iter().enumerate() {
            let row = channel * plan.taps.len() + tap;
            let x_offset = (kx * shape.dilation[1]) as isize - shape.padding[1].0 as isize;
            let xs = valid_outputs(out_w, shape.stride[1], x_offset, shape.in_size[1]);
            let first_x = (xs.0 as isize * shape.stride[1] as isize + x_offset).max(0);
            for out_y in 0..out_h {
                let in_y = (out_y * shape.stride[0] + ky * shape.dilation[0]) as isize
                    - shape.padding[0].0 as isize;
                let valid = in_y >= 0 && (in_y as usize) < shape.in_size[0];
                let in_y = if valid { in_y as usize } else { 0 };
                visit(
                    row,
                    out_y,
                    channel * shape.in_plane() + in_y * shape.in_size[1],
                    valid.then_some((first_x as usize, xs)),
                );
            }
        }
    }
}

/// im2col: writes the patches of the images in `x` into `cols` (`[patch_len, columns]`).
fn fill_cols(x: &[f32], plan: &Plan, cols: &mut [f32], columns: usize) {
    let shape = plan.shape;
    let in_image = shape.in_channels * shape.in_plane();
    let plane = shape.out_plane();
    let out_w = shape.out_size()[1];
    let stride = shape.stride[1];
    if shape.stride == [1, 1] && out_w == shape.in_size[1] {
        for (image, x) in x.chunks(in_image).enumerate() {
            fill_cols_shifted(x, plan, cols, columns, image * plane);
        }
        return;
    }
    for (image, x) in x.chunks(in_image).enumerate() {
        for_each_patch_row(plan, |row, out_y, in_row, valid| {
            let start = row * columns + image * plane + out_y * out_w;
            let dst = &mut cols[start..start + out_w];
            let Some((first_x, (begin, end))) = valid.filter(|(_, (b, e))| b < e) else {
                dst.fill(0.0);
                return;
            };
            dst[..begin].fill(0.0);
            dst[end..].fill(0.0);
            let src = &x[in_row + first_x..];
            if stride == 1 {
                dst[begin..end].copy_from_slice(&src[..end - begin]);
            } else {
                for (d, s) in dst[begin..end].iter_mut().zip(src.iter().step_by(stride)) {
                    *d = *s;
                }
            }
        });
    }
}

/// im2col of one image for stride-1 convolutions whose output is as wide as the input (the
/// ResNet's 3×3 convolutions with padding 1, and 1×1 ones): each patch row is the input plane
/// shifted by one offset, so it is one contiguous copy followed by zeroing the columns that
/// wrapped around from the neighbouring row and the rows that fall into the padding.
fn fill_cols_shifted(x: &[f32], plan: &Plan, cols: &mut [f32], columns: usize, first: usize) {
    let shape = plan.shape;
    let [in_h, width] = shape.in_size;
    let out_h = shape.out_size()[0];
    let in_plane = shape.in_plane();
    for channel in 0..shape.in_channels {
        let src = &x[channel * in_plane..(channel + 1) * in_plane];
        for (tap, &[ky, kx]) in plan.taps.iter().enumerate() {
            let row = channel * plan.taps.len() + tap;
            let dst = &mut cols[row * columns + first..row * columns + first + out_h * width];
            let dy = (ky * shape.dilation[0]) as isize - shape.padding[0].0 as isize;
            let dx = (kx * shape.dilation[1]) as isize - shape.padding[1].0 as isize;
            // Output pixel i reads input pixel i + shift while both rows are in range.
            let (y0, y1) = valid_outputs(out_h, 1, dy, in_h);
            let shift = dy * width as isize + dx;
            let lo = ((y0 * width) as isize).max(-shift) as usize;
            let hi = ((y1 * width) as isize)
                .min(in_plane as isize - shift)
                .max(lo as isize) as usize;
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            let from = (lo as isize + shift) as usize;
            dst[lo..hi].copy_from_slice(&src[from..from + (hi - lo)]);
            // Columns that read past the left or right edge took the neighbouring row's pixels.
            let (x0, x1) = valid_outputs(width, 1, dx, width);
            if x0 > 0 || x1 < width {
                for line in dst[y0 * width..y1 * width].chunks_mut(width) {
                    line[..x0].fill(0.0);
                    line[x1..].fill(0.0);
                }
            }
        }
    }
}

/// col2im: adds each column of `cols` back onto the input pixels it was read from.
fn add_cols(cols: &[f32], plan: &Plan, x_grad: &mut [f32], columns: usize) {
    let shape = plan.shape;
    let in_image = shape.in_channels * shape.in_plane();
    let plane = shape.out_plane();
    let out_w = shape.out_size()[1];
    let stride = shape.stride[1];
    for (image, x_grad) in x_grad.chunks_mut(in_image).enumerate() {
        for_each_patch_row(plan, |row, out_y, in_row, valid| {
            let Some((first_x, (begin, end))) = valid.filter(|(_, (b, e))| b < e) else {
                return;
            };
            let start = row * columns + image * plane + out_y * out_w;
            let src = &cols[start + begin..start + end];
            let dst = &mut x_grad[in_row + first_x..];
            if stride == 1 {
                dst[..src.len()]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, s)| *d += s);
            } else {
                for (d, s) in dst.iter_mut().step_by(stride).zip(src) {
                    *d += s;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn naive(x: &[f32], w: &[f32], s: &Conv2dShape) -> Vec<f32> {
        let [oh, ow] = s.out_size();
        let [ih, iw] = s.in_size;
        let [kh, kw] = s.kernel;
        let mut out = vec![0.0; s.output_len()];
        for b in 0..s.batch {
            for o in 0..s.out_channels {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0f64;
                        for c in 0..s.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * s.stride[0] + ky * s.dilation[0]) as isize
                                        - s.padding[0].0 as isize;
                                    let ix = (xo * s.stride[1] + kx * s.dilation[1]) as isize
                                        - s.padding[1].0 as isize;
                                    if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                        continue;
                                    }
                                    let xv = x[((b * s.in_channels + c) * ih + iy as usize) * iw
                                        + ix as usize];
                                    let wv = w[((o * s.in_channels + c) * kh + ky) * kw + kx];
                                    acc += (xv * wv) as f64;
                                }
                            }
                        }
                        out[((b * s.out_channels + o) * oh + y) * ow + xo] = acc as f32;
                    }
                }
            }
        }
        out
    }

    use crate::test_values as values;

    fn shapes() -> Vec<Conv2dShape> {
        let base = Conv2dShape {
            batch: 3,
            in_channels: 4,
            in_size: [9, 7],
            out_channels: 5,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [(1, 1), (1, 1)],
            dilation: [1, 1],
        };
        vec![
            base,
            Conv2dShape {
                stride: [2, 2],
                ..base
            },
            Conv2dShape {
                kernel: [1, 1],
                padding: [(0, 0), (0, 0)],
                ..base
            },
            Conv2dShape {
                kernel: [1, 1],
                padding: [(0, 0), (0, 0)],
                stride: [2, 2],
                ..base
            },
            Conv2dShape {
                kernel: [7, 7],
                padding: [(3, 3), (3, 3)],
                stride: [2, 2],
                in_channels: 3,
                ..base
            },
            Conv2dShape {
                dilation: [2, 3],
                padding: [(2, 1), (0, 3)],
                ..base
            },
            Conv2dShape {
                kernel: [2, 3],
                stride: [3, 1],
                padding: [(0, 1), (2, 0)],
                ..base
            },
            // Larger than the input with no padding: an empty output.
            Conv2dShape {
                kernel: [11, 3],
                padding: [(0, 0), (0, 0)],
                ..base
            },
            // Many small images, grouped into one product.
            Conv2dShape {
                batch: 37,
                in_size: [2, 2],
                ..base
            },
            // A 1×1 map: only the centre tap reads an input pixel.
            Conv2dShape {
                batch: 5,
                in_size: [1, 1],
                ..base
            },
            // A 1-pixel-high map: the top and bottom kernel rows read only padding.
            Conv2dShape {
                in_size: [1, 6],
                ..base
            },
        ]
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}[{i}]: {g} != {w}"
            );
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for shape in shapes() {
            let x = values(shape.input_len(), 1);
            let w = values(shape.weight_len(), 2);
            assert_close(
                &forward(&x, &w, &shape),
                &naive(&x, &w, &shape),
                &format!("{shape:?}"),
            );
        }
    }

    /// The gradients satisfy ⟨dy, conv(x, w)⟩'s derivatives: for the linear map
    /// x ↦ conv(x, w), ⟨dy, conv(e_i, w)⟩ is the i-th input gradient, and likewise for w.
    #[test]
    fn gradients_match_the_definition() {
        for shape in shapes() {
            let x = values(shape.input_len(), 3);
            let w = values(shape.weight_len(), 4);
            let dy = values(shape.output_len(), 5);
            let (dx, dw) = backward(&x, &w, &dy, &shape, true, true);
            let (dx, dw) = (dx.unwrap(), dw.unwrap());
            let dot = |out: &[f32]| {
                out.iter()
                    .zip(&dy)
                    .map(|(a, b)| (a * b) as f64)
                    .sum::<f64>()
            };
            let mut basis = vec![0.0; x.len()];
            for i in 0..x.len() {
                basis[i] = 1.0;
                let want = dot(&naive(&basis, &w, &shape)) as f32;
                basis[i] = 0.0;
                assert!(
                    (dx[i] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{shape:?} dx[{i}]"
                );
            }
            let mut basis = vec![0.0; w.len()];
            for i in 0..w.len() {
                basis[i] = 1.0;
                let want = dot(&naive(&x, &basis, &shape)) as f32;
                basis[i] = 0.0;
                assert!(
                    (dw[i] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{shape:?} dw[{i}]"
                );
            }
            // Asking for one gradient gives the same one.
            let (only_dx, none) = backward(&x, &w, &dy, &shape, true, false);
            assert!(none.is_none());
            assert_close(&only_dx.unwrap(), &dx, "input gradient alone");
            let (none, only_dw) = backward(&x, &w, &dy, &shape, false, true);
            assert!(none.is_none());
            assert_close(&only_dw.unwrap(), &dw, "weight gradient alone");
        }
    }
}
