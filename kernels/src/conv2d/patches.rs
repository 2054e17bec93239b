//! im2col and col2im: the patch matrix of a group of images (one row per input channel and live
//! kernel tap, one column per output pixel), and its adjoint, which adds columns back onto the
//! input pixels they were read from.

use super::Plan;

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
pub(super) fn fill_cols(x: &[f32], plan: &Plan, cols: &mut [f32], columns: usize) {
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
pub(super) fn add_cols(cols: &[f32], plan: &Plan, x_grad: &mut [f32], columns: usize) {
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
