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
