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

    /// For convolutions whose patch rows are shifted copies of the input planes (see
    /// [`is_shifted`]), where each live tap reads: `None` for the others.
    pub(super) fn shifted_taps(&self, shape: &Conv2dShape) -> Option<Vec<ShiftedTap>> {
        let shifted = self.gather.is_none() && is_shifted(shape);
        shifted.then(|| {
            let (width, in_plane) = (shape.in_size[1], shape.in_plane());
            let taps = self.taps.iter().map(|read| {
                let (lo, hi, shift) = read.shifted_span(width, in_plane);
                ShiftedTap {
                    lo,
                    hi,
                    shift,
                    rows: read.dy,
                    columns: read.dx,
                    xs: read.xs,
                }
            });
            taps.collect()
        })
    }
}

/// One live tap of a shifted convolution: output pixels `lo..hi` of a plane read input pixel
/// `j + shift`; of those, the ones in output columns outside `xs` read across the left or right
/// edge (the neighbouring row's pixels) and count as padding.
pub(super) struct ShiftedTap {
    pub(super) lo: usize,
    pub(super) hi: usize,
    /// `rows · width + columns`: the tap's offset in rows and columns, flattened.
    pub(super) shift: isize,
    pub(super) rows: isize,
    pub(super) columns: isize,
    pub(super) xs: (usize, usize),
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
