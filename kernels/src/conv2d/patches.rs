//! im2col and col2im: the patch matrix of a group of images (one row per input channel and live
//! kernel tap, one column per output pixel), and its adjoint, which adds columns back onto the
//! input pixels they were read from.
//!
//! Three ways to walk the patches, picked per call by the size of the maps ([`Reads`]):
//! - small maps (up to `GATHER_MAX_LEN` taps × pixels): a table of the input pixel each tap and
//!   output pixel reads, so each patch row is one gather (im2col) or scatter-add (col2im);
//! - stride-1 convolutions whose output is as wide as the input, on maps of more than
//!   `SHIFTED_MIN_PLANE` pixels: each patch row is the input plane shifted, one contiguous copy
//!   or sum;
//! - the rest (a large strided stem): row by row.
//!
//! A narrow network's step spent a quarter of its time here when every map went row by row:
//! 2 × 2 to 16 × 16 maps have more patch rows than pixels per row, and each row's few values
//! cost a `memmove` call and two `memset` calls. Whole shifted planes make a few calls per plane
//! instead of per row.

use super::{Conv2dShape, Plan};

/// The output positions `o` in `0..out_len` whose input index `o · stride + offset` falls
/// inside `0..in_len`.
pub(super) fn valid_outputs(
    out_len: usize,
    stride: usize,
    offset: isize,
    in_len: usize,
) -> (usize, usize) {
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

/// Output pixels per plane up to which a stride-1, same-width convolution gathers its patches
/// through [`Reads::gather`] rather than shifted copies. Measured on the study's network
/// (maps of 16 × 16 down to 2 × 2): shifted copies down to 4 × 4 maps were fastest, in spite of
/// the `memmove` and `memset` calls a few values cost; on 2 × 2 maps the gather was.
const SHIFTED_MIN_PLANE: usize = 4;
/// Largest gather table (taps × output pixels): 128 KiB, beside the per-row walk for larger maps.
const GATHER_MAX_LEN: usize = 1 << 15;

/// Where a convolution's patches read, computed once per call and shared by its groups.
pub(super) struct Reads {
    taps: Vec<TapReads>,
    /// For each live tap and output pixel, the input pixel it reads (an index into one input
    /// channel's plane), `u32::MAX` where it reads padding; only for maps small enough for
    /// [`GATHER_MAX_LEN`] that are not better served by shifted copies.
    gather: Option<Vec<u32>>,
}

impl Reads {
    pub(super) fn new(shape: &Conv2dShape, taps: &[[usize; 2]]) -> Self {
        let taps = TapReads::all(shape, taps);
        let plane = shape.out_plane();
        let shifted = is_shifted(shape) && plane > SHIFTED_MIN_PLANE;
        let gather = (!shifted && taps.len() * plane <= GATHER_MAX_LEN).then(|| {
            let [out_h, out_w] = shape.out_size();
            let [sy, sx] = shape.stride;
            let in_w = shape.in_size[1];
            let mut table = Vec::with_capacity(taps.len() * plane);
            for read in &taps {
                for oy in 0..out_h {
                    for ox in 0..out_w {
                        let inside = (read.ys.0..read.ys.1).contains(&oy)
                            && (read.xs.0..read.xs.1).contains(&ox);
                        table.push(if inside {
                            let iy = (oy * sy) as isize + read.dy;
                            let ix = (ox * sx) as isize + read.dx;
                            (iy as usize * in_w + ix as usize) as u32
                        } else {
                            u32::MAX
                        });
                    }
                }
            }
            table
        });
        Self { taps, gather }
    }
}

/// Where one live tap reads, the same for every input channel.
struct TapReads {
    /// Vertical input offset of output row 0.
    dy: isize,
    /// Horizontal input offset of output column 0.
    dx: isize,
    /// Output columns `[begin, end)` that read inside the input, and the first one's input column.
    xs: (usize, usize),
    first_x: usize,
    /// Output rows `[begin, end)` that read inside the input.
    ys: (usize, usize),
}

impl TapReads {
    fn all(shape: &Conv2dShape, taps: &[[usize; 2]]) -> Vec<TapReads> {
        let [out_h, out_w] = shape.out_size();
        taps.iter()
            .map(|&[ky, kx]| {
                let dy = (ky * shape.dilation[0]) as isize - shape.padding[0].0 as isize;
                let dx = (kx * shape.dilation[1]) as isize - shape.padding[1].0 as isize;
                let xs = valid_outputs(out_w, shape.stride[1], dx, shape.in_size[1]);
                let first_x = (xs.0 as isize * shape.stride[1] as isize + dx).max(0) as usize;
                let ys = valid_outputs(out_h, shape.stride[0], dy, shape.in_size[0]);
                TapReads {
                    dy,
                    dx,
                    xs,
                    first_x,
                    ys,
                }
            })
            .collect()
    }

    /// For stride-1, same-width convolutions: output pixels `[lo, hi)` of a plane read input
    /// pixel `i + shift` (the others read padding above or below).
    fn shifted_span(&self, width: usize, in_plane: usize) -> (usize, usize, isize) {
        let (y0, y1) = self.ys;
        let shift = self.dy * width as isize + self.dx;
        let lo = ((y0 * width) as isize).max(-shift) as usize;
        let hi = ((y1 * width) as isize)
            .min(in_plane as isize - shift)
            .max(lo as isize) as usize;
        (lo, hi, shift)
    }
}

/// Walks every (patch row, output row) pair of a group: `visit(row, out_y, in_y, xs)` with
/// `xs` the valid output columns and their first input column, `None` where the row reads
/// padding.
fn for_each_patch_row(
    plan: &Plan,
    mut visit: impl FnMut(usize, usize, usize, Option<(usize, (usize, usize))>),
) {
    let shape = plan.shape;
    let out_h = shape.out_size()[0];
    for channel in 0..shape.in_channels {
        for (tap, read) in plan.reads.taps.iter().enumerate() {
            let row = channel * plan.taps.len() + tap;
            for out_y in 0..out_h {
                let valid = read.ys.0 <= out_y && out_y < read.ys.1 && read.xs.0 < read.xs.1;
                let in_y = if valid {
                    (out_y as isize * shape.stride[0] as isize + read.dy) as usize
                } else {
                    0
                };
                visit(
                    row,
                    out_y,
                    channel * shape.in_plane() + in_y * shape.in_size[1],
                    valid.then_some((read.first_x, read.xs)),
                );
            }
        }
    }
}

/// Walks the patch rows of a group of `images` through the gather table:
/// `visit(input, start, index)` for each image, input channel and live tap, with `input` where
/// the channel's plane starts in the group's input, `start` where the patch row's part for the
/// image starts in `cols`, and `index` the tap's part of the table.
#[inline(always)]
fn for_each_gathered_row(
    plan: &Plan,
    gather: &[u32],
    images: usize,
    columns: usize,
    mut visit: impl FnMut(usize, usize, &[u32]),
) {
    let shape = plan.shape;
    let (in_plane, plane) = (shape.in_plane(), shape.out_plane());
    for image in 0..images {
        for channel in 0..shape.in_channels {
            let input = (image * shape.in_channels + channel) * in_plane;
            for (tap, index) in gather.chunks(plane).enumerate() {
                let row = channel * plan.taps.len() + tap;
                visit(input, row * columns + image * plane, index);
            }
        }
    }
}

/// Zeroes a few values. The edges zeroed per output row are zero to two values wide, where
/// `fill` costs a call to `memset` each; one store does the common one-value case.
#[inline(always)]
fn zero(values: &mut [f32]) {
    match values {
        [] => {}
        [only] => *only = 0.0,
        _ => values.fill(0.0),
    }
}

/// Whether a convolution's patch rows are shifted copies of whole input planes: stride 1 and
/// an output as wide as the input (the ResNet's 3×3 convolutions with padding 1, and 1×1 ones).
fn is_shifted(shape: &Conv2dShape) -> bool {
    shape.stride == [1, 1] && shape.out_size()[1] == shape.in_size[1]
}

/// im2col: writes the patches of the images in `x` into `cols` (`[patch_len, columns]`).
pub(super) fn fill_cols(x: &[f32], plan: &Plan, cols: &mut [f32], columns: usize) {
    let shape = plan.shape;
    let in_image = shape.in_channels * shape.in_plane();
    let plane = shape.out_plane();
    let out_w = shape.out_size()[1];
    let stride = shape.stride[1];
    if let Some(gather) = &plan.reads.gather {
        let images = x.len() / in_image.max(1);
        for_each_gathered_row(plan, gather, images, columns, |input, start, index| {
            let x = &x[input..input + shape.in_plane()];
            for (d, &i) in cols[start..start + plane].iter_mut().zip(index) {
                *d = x.get(i as usize).copied().unwrap_or(0.0);
            }
        });
        return;
    }
    if is_shifted(shape) {
        for (image, x) in x.chunks(in_image).enumerate() {
            fill_cols_shifted(x, plan, cols, columns, image * plane);
        }
        return;
    }
    for (image, x) in x.chunks(in_image).enumerate() {
        for_each_patch_row(plan, |row, out_y, in_row, valid| {
            let start = row * columns + image * plane + out_y * out_w;
            let dst = &mut cols[start..start + out_w];
            let Some((first_x, (begin, end))) = valid else {
                dst.fill(0.0);
                return;
            };
            zero(&mut dst[..begin]);
            zero(&mut dst[end..]);
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

/// im2col of one image for [`is_shifted`] convolutions: each patch row is the input plane
/// shifted by one offset, so it is one contiguous copy followed by zeroing the columns that
/// wrapped around from the neighbouring row and the rows that fall into the padding.
fn fill_cols_shifted(x: &[f32], plan: &Plan, cols: &mut [f32], columns: usize, first: usize) {
    let shape = plan.shape;
    let width = shape.in_size[1];
    let plane = shape.out_plane();
    let in_plane = shape.in_plane();
    for channel in 0..shape.in_channels {
        let src = &x[channel * in_plane..(channel + 1) * in_plane];
        for (tap, read) in plan.reads.taps.iter().enumerate() {
            let row = channel * plan.taps.len() + tap;
            let dst = &mut cols[row * columns + first..row * columns + first + plane];
            let (lo, hi, shift) = read.shifted_span(width, in_plane);
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            let from = (lo as isize + shift) as usize;
            dst[lo..hi].copy_from_slice(&src[from..from + (hi - lo)]);
            zero_wrapped(dst, width, read);
        }
    }
}

/// In a shifted patch row (`plane`, whole output rows of `width`), the columns that read past
/// the left or right edge took the neighbouring input row's pixels: zeroes them, one strided
/// store per column (a convolution of padding 1 has one such column).
fn zero_wrapped(plane: &mut [f32], width: usize, read: &TapReads) {
    let (x0, x1) = read.xs;
    let (y0, y1) = read.ys;
    let lines = &mut plane[y0 * width..y1 * width];
    for column in (0..x0).chain(x1..width) {
        for value in lines.iter_mut().skip(column).step_by(width) {
            *value = 0.0;
        }
    }
}

/// col2im: adds each column of `cols` back onto the input pixels it was read from. `cols` is
/// scratch: the values [`fill_cols`] would have zeroed are zeroed in it.
pub(super) fn add_cols(cols: &mut [f32], plan: &Plan, x_grad: &mut [f32], columns: usize) {
    let shape = plan.shape;
    let in_image = shape.in_channels * shape.in_plane();
    let plane = shape.out_plane();
    let out_w = shape.out_size()[1];
    let stride = shape.stride[1];
    if let Some(gather) = &plan.reads.gather {
        let images = x_grad.len() / in_image.max(1);
        for_each_gathered_row(plan, gather, images, columns, |input, start, index| {
            let x_grad = &mut x_grad[input..input + shape.in_plane()];
            for (&g, &i) in cols[start..start + plane].iter().zip(index) {
                if let Some(d) = x_grad.get_mut(i as usize) {
                    *d += g;
                }
            }
        });
        return;
    }
    if is_shifted(shape) {
        for (image, x_grad) in x_grad.chunks_mut(in_image).enumerate() {
            add_cols_shifted(cols, plan, x_grad, columns, image * plane);
        }
        return;
    }
    for (image, x_grad) in x_grad.chunks_mut(in_image).enumerate() {
        for_each_patch_row(plan, |row, out_y, in_row, valid| {
            let Some((first_x, (begin, end))) = valid else {
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

/// The adjoint of [`fill_cols_shifted`] for one image: each patch row is added back onto its
/// input plane as one shifted, contiguous sum, once the columns that wrapped around from the
/// neighbouring row are zeroed.
fn add_cols_shifted(
    cols: &mut [f32],
    plan: &Plan,
    x_grad: &mut [f32],
    columns: usize,
    first: usize,
) {
    let shape = plan.shape;
    let width = shape.in_size[1];
    let plane = shape.out_plane();
    let in_plane = shape.in_plane();
    for channel in 0..shape.in_channels {
        let dst = &mut x_grad[channel * in_plane..(channel + 1) * in_plane];
        for (tap, read) in plan.reads.taps.iter().enumerate() {
            let row = channel * plan.taps.len() + tap;
            let src = &mut cols[row * columns + first..row * columns + first + plane];
            let (lo, hi, shift) = read.shifted_span(width, in_plane);
            zero_wrapped(src, width, read);
            let to = (lo as isize + shift) as usize;
            dst[to..to + (hi - lo)]
                .iter_mut()
                .zip(&src[lo..hi])
                .for_each(|(d, s)| *d += s);
        }
    }
}

/// `dst = srcᵀ` for a row-major `[rows, cols]` `src`: 8 × 8 blocks through AVX registers where
/// the processor has AVX, square tiles of scalar copies elsewhere and at the edges.
pub(super) fn transpose(src: &[f32], dst: &mut [f32], rows: usize, cols: usize) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
        for row in (0..rows8).step_by(8) {
            for col in (0..cols8).step_by(8) {
                // SAFETY: AVX is present, and the block's 8 rows of 8 values lie inside both
                // matrices (`row + 8 <= rows`, `col + 8 <= cols`, lengths checked above).
                unsafe {
                    avx::transpose8x8(
                        src.as_ptr().add(row * cols + col),
                        cols,
                        dst.as_mut_ptr().add(col * rows + row),
                        rows,
                    )
                }
            }
        }
        // The right edge (all rows of the last columns), then the bottom edge.
        transpose_scalar(src, dst, [0, rows], [cols8, cols], rows, cols);
        transpose_scalar(src, dst, [rows8, rows], [0, cols8], rows, cols);
        return;
    }
    transpose_scalar(src, dst, [0, rows], [0, cols], rows, cols);
}

/// [`transpose`] of the block `row_range × col_range`, in square tiles so that both sides are
/// read and written a cache line at a time.
fn transpose_scalar(
    src: &[f32],
    dst: &mut [f32],
    [row_begin, row_end]: [usize; 2],
    [col_begin, col_end]: [usize; 2],
    rows: usize,
    cols: usize,
) {
    const TILE: usize = 16;
    for row0 in (row_begin..row_end).step_by(TILE) {
        let tile_rows = row0..(row0 + TILE).min(row_end);
        for col0 in (col_begin..col_end).step_by(TILE) {
            let tile_end = (col0 + TILE).min(col_end);
            for row in tile_rows.clone() {
                let from = &src[row * cols + col0..row * cols + tile_end];
                for (col, &value) in (col0..tile_end).zip(from) {
                    dst[col * rows + row] = value;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// Transposes the 8 × 8 block at `src` (rows `src_stride` apart) into `dst` (rows
    /// `dst_stride` apart): pairs interleaved, then quads, then 128-bit halves.
    ///
    /// # Safety
    /// The processor has AVX, and 8 rows of 8 `f32` are readable at `src` and writable at `dst`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose8x8(
        src: *const f32,
        src_stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        // SAFETY: the caller guarantees the 8 rows at both ends.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (i, row) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(i * dst_stride), row);
            }
        }
    }
}
