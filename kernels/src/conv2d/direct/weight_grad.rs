//! The weight gradient of a shifted convolution as dot products of the output gradient with
//! the shifted input planes (see the parent module).
//!
//! Blocks of 4 output channels × 3 input channels keep 12 sums of 8 lanes in AVX registers;
//! spans are walked in chunks of [`CHUNK`] pixels so that the block's 7 rows stay in the L1
//! cache across the taps. Images are split into parts as in the other passes, each with its
//! own sum, added in a fixed order.

use rayon::prelude::*;

use super::{Conv2dShape, Plan, ShiftedTap, column_ranges};

/// Output channels × input channels per block of register sums.
const OUT_BLOCK: usize = 4;
const IN_BLOCK: usize = 3;
/// Output pixels per chunk of a span: 7 rows of 512 values (14 KiB) stay in L1 across the taps.
const CHUNK: usize = 512;

/// `dW` over the live taps (`[out_channels, in_channels · taps]`, the layout of
/// [`Plan::weight`]), or `None` where the direct kernels do not apply.
pub(in crate::conv2d) fn weight_grad(
    x: &[f32],
    out_grad: &[f32],
    plan: &Plan,
    per_part: usize,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let shape = plan.shape;
        let taps = super::taps(plan)?;
        let in_image = shape.in_channels * shape.in_plane();
        let out_image = shape.out_channels * shape.out_plane();
        let parts: Vec<Vec<f32>> = x
            .par_chunks(per_part * in_image)
            .zip(out_grad.par_chunks(per_part * out_image))
            // SAFETY: AVX2 and FMA are present (checked above).
            .map(|(x, dy)| unsafe { avx::part_sum(x, dy, shape, &taps) })
            .collect();
        super::super::sum_parts(parts)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, out_grad, plan, per_part);
        None
    }
}

/// The output gradient of some images with the columns outside `xs` zeroed, or `None` where
/// `xs` spans the whole width (the gradient itself serves).
fn masked(dy: &[f32], width: usize, (x0, x1): (usize, usize)) -> Option<Vec<f32>> {
    if x0 == 0 && x1 == width {
        return None;
    }
    let mut copy = dy.to_vec();
    for row in copy.chunks_mut(width) {
        row[..x0].fill(0.0);
        row[x1..].fill(0.0);
    }
    Some(copy)
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{CHUNK, Conv2dShape, IN_BLOCK, OUT_BLOCK, ShiftedTap, column_ranges, masked};

    /// One part's `dW` over its images (`x` and `dy` hold the same whole images).
    ///
    /// # Safety
    /// The processor has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn part_sum(
        x: &[f32],
        dy: &[f32],
        shape: &Conv2dShape,
        taps: &[ShiftedTap],
    ) -> Vec<f32> {
        let (inputs, outputs) = (shape.in_channels, shape.out_channels);
        let (width, plane, in_plane) = (shape.in_size[1], shape.out_plane(), shape.in_plane());
        let images = x.len() / (inputs * in_plane).max(1);
        // One copy of an image's output gradient per distinct range of valid columns, with
        // the columns outside it zeroed; `which[t]`: the range tap `t` reads through.
        let (ranges, which) = column_ranges(taps);
        // Register blocks, each with its sums of 8 lanes per tap, kept across the images.
        let blocks: Vec<(usize, usize)> = (0..outputs)
            .step_by(OUT_BLOCK)
            .flat_map(|o0| (0..inputs).step_by(IN_BLOCK).map(move |c0| (o0, c0)))
            .collect();
        let mut sums = vec![[[0.0f32; 8]; OUT_BLOCK * IN_BLOCK]; blocks.len() * taps.len()];
        // Images outermost: one image's input and output-gradient copies stay in the L2
        // cache while every block reads them.
        for image in 0..images {
            let dy = &dy[image * outputs * plane..(image + 1) * outputs * plane];
            let x = &x[image * inputs * in_plane..(image + 1) * inputs * in_plane];
            let copies: Vec<Option<Vec<f32>>> =
                ranges.iter().map(|&xs| masked(dy, width, xs)).collect();
            let tap_dy: Vec<&[f32]> = which
                .iter()
                .map(|&i| copies[i].as_deref().unwrap_or(dy))
                .collect();
            for (&(o0, c0), sums) in blocks.iter().zip(sums.chunks_mut(taps.len())) {
                // Rows past the last channel repeat it; their sums are not kept.
                let o_rows: [usize; OUT_BLOCK] = std::array::from_fn(|i| (o0 + i).min(outputs - 1));
                let c_rows: [usize; IN_BLOCK] = std::array::from_fn(|i| (c0 + i).min(inputs - 1));
                for chunk in (0..plane).step_by(CHUNK) {
                    for ((tap, dy), sums) in taps.iter().zip(&tap_dy).zip(sums.iter_mut()) {
                        let lo = tap.lo.max(chunk);
                        let hi = tap.hi.min(chunk + CHUNK);
                        if lo >= hi {
                            continue;
                        }
                        let from = (lo as isize + tap.shift) as usize;
                        let dy_rows = o_rows.map(|o| &dy[o * plane + lo..][..hi - lo]);
                        let x_rows = c_rows.map(|c| &x[c * in_plane + from..][..hi - lo]);
                        // SAFETY: AVX2 and FMA are present (this function's contract).
                        unsafe { dot_block(sums, dy_rows, x_rows) };
                    }
                }
            }
        }
        let patch_len = inputs * taps.len();
        let mut sum = vec![0.0; outputs * patch_len];
        for (&(o0, c0), sums) in blocks.iter().zip(sums.chunks(taps.len())) {
            for (t, sums) in sums.iter().enumerate() {
                for (i, lanes) in sums.iter().enumerate() {
                    let (o, c) = (o0 + i / IN_BLOCK, c0 + i % IN_BLOCK);
                    if o < outputs && c < inputs {
                        sum[o * patch_len + c * taps.len() + t] = lanes.iter().sum::<f32>();
                    }
                }
            }
        }
        sum
    }

    /// `sums[o·IN_BLOCK + c] += dy[o] ⊙ x[c]`, eight lanes each, over rows of one length; the
    /// last partial vector through masked loads.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_block(
        sums: &mut [[f32; 8]; OUT_BLOCK * IN_BLOCK],
        dy: [&[f32]; OUT_BLOCK],
        x: [&[f32]; IN_BLOCK],
    ) {
        let len = x[0].len();
        debug_assert!(dy.iter().chain(&x).all(|row| row.len() == len));
        // SAFETY: every load reads `j..j + 8` of a row with `j + 8 <= len`, or the masked lanes
        // `< len - j` of the last vector; the sums are 12 arrays of 8 floats.
        unsafe {
            let mut acc: [__m256; OUT_BLOCK * IN_BLOCK] =
                std::array::from_fn(|i| _mm256_loadu_ps(sums[i].as_ptr()));
            let mut j = 0;
            while j + 8 <= len {
                let xv: [__m256; IN_BLOCK] =
                    std::array::from_fn(|c| _mm256_loadu_ps(x[c].as_ptr().add(j)));
                for (o, row) in dy.iter().enumerate() {
                    let d = _mm256_loadu_ps(row.as_ptr().add(j));
                    for c in 0..IN_BLOCK {
                        acc[o * IN_BLOCK + c] = _mm256_fmadd_ps(d, xv[c], acc[o * IN_BLOCK + c]);
                    }
                }
                j += 8;
            }
            if j < len {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((len - j) as i32), lanes);
                let xv: [__m256; IN_BLOCK] =
                    std::array::from_fn(|c| _mm256_maskload_ps(x[c].as_ptr().add(j), mask));
                for (o, row) in dy.iter().enumerate() {
                    let d = _mm256_maskload_ps(row.as_ptr().add(j), mask);
                    for c in 0..IN_BLOCK {
                        acc[o * IN_BLOCK + c] = _mm256_fmadd_ps(d, xv[c], acc[o * IN_BLOCK + c]);
                    }
                }
            }
            for (sum, acc) in sums.iter_mut().zip(acc) {
                _mm256_storeu_ps(sum.as_mut_ptr(), acc);
            }
        }
    }
}
