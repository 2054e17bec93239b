//! The forward pass of a shifted convolution read straight from the input (see the parent
//! module): `out[o, j] = Σ_(c, tap) w[o, c, tap] · x[c, j + shift(tap)]`.
//!
//! Each image is first copied once per distinct range of valid columns into planes padded
//! with zero rows above and below, with the columns a tap must not read across the edge zeroed.
//! Every tap then reads a whole vector for any output pixel, and a block of 4 output channels ×
//! 16 output pixels keeps its 8 sums in AVX registers across all input channels and taps.
//! Parts of images run as rayon tasks, as in the patch route.

use rayon::prelude::*;

use super::{Plan, ShiftedTap, column_ranges, padding_rows};

/// Patch rows (input channels × taps) up to which this kernel is taken. Measured per layer
/// shape on a 2-core AVX2 EPYC against the patch route, at 32 × 32 and 56 × 56: about 2× faster
/// with 3 input channels (27 rows) and 1.5× with 16 (144 rows), even with 32 (288 rows), and
/// slower with 64 (576 rows), where gemm's blocking reuses each input value over more outputs.
const MAX_PATCH_LEN: usize = 200;
/// Output channels per block of register sums.
const OUT_BLOCK: usize = 4;
/// Vectors of 8 output pixels per block: 4 × 2 sums leave registers for the loads and
/// broadcasts. With 4 × 3 one build kept a sum on the stack and ran at half the speed.
const VECTORS: usize = 2;

/// `conv2d(x, w)`, or `None` (nothing allocated) where the direct kernels do not apply.
pub(in crate::conv2d) fn forward(x: &[f32], plan: &Plan, per_part: usize) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let taps = super::taps(plan).filter(|_| plan.patch_len() <= MAX_PATCH_LEN)?;
        let shape = plan.shape;
        let mut out = vec![0.0; shape.output_len()];
        let in_image = shape.in_channels * shape.in_plane();
        let out_image = shape.out_channels * shape.out_plane();
        let weights = packed_weights(plan);
        out.par_chunks_mut(per_part * out_image)
            .zip(x.par_chunks(per_part * in_image))
            .for_each(|(out, x)| {
                let mut padded = Padded::new(plan, &taps);
                for (out, x) in out.chunks_mut(out_image).zip(x.chunks(in_image)) {
                    padded.fill(x, shape.in_size);
                    // SAFETY: AVX2 and FMA are present (`taps` checked), and `padded` holds
                    // every value the taps read for the image's output pixels.
                    unsafe { avx::image(out, &padded, &weights, plan) };
                }
            });
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, plan, per_part);
        None
    }
}

/// The weight by blocks of [`OUT_BLOCK`] output channels: for each block, one group of
/// `OUT_BLOCK` values per column (input channel and tap), so that a block's step reads one
/// group. Rows past the last channel repeat it.
fn packed_weights(plan: &Plan) -> Vec<[f32; OUT_BLOCK]> {
    let outputs = plan.shape.out_channels;
    let patch_len = plan.patch_len();
    (0..outputs)
        .step_by(OUT_BLOCK)
        .flat_map(|o0| {
            (0..patch_len).map(move |k| {
                std::array::from_fn(|i| plan.weight[(o0 + i).min(outputs - 1) * patch_len + k])
            })
        })
        .collect()
}

/// One image's input, copied per range of valid columns into padded planes.
struct Padded {
    /// One buffer per column range: `in_channels` planes of `plane_len` values each.
    copies: Vec<Vec<f32>>,
    /// For each copy, the input columns `[first, end)` it holds; the rest stay zero.
    columns: Vec<(usize, usize)>,
    plane_len: usize,
    /// Where the input's rows start in each plane.
    first_row: usize,
    /// For each live tap, its copy and the offset of output pixel 0's read in each plane.
    reads: Vec<(usize, usize)>,
}

impl Padded {
    /// Zeroed copies for images of `plan`'s shape, to be filled by [`Padded::fill`]: the
    /// padding rows and the columns outside each copy's range stay zero from one image to
    /// the next.
    fn new(plan: &Plan, taps: &[ShiftedTap]) -> Self {
        let shape = plan.shape;
        let [in_h, width] = shape.in_size;
        let (top, bottom) = padding_rows(shape, taps);
        // One more zero row on each side: a tap's read across the edge of the first or last
        // output row lands there.
        let plane_len = (top + in_h + bottom + 2) * width;
        let first_row = (top + 1) * width;
        let (ranges, which) = column_ranges(taps);
        // The input columns the taps of each range read legitimately.
        let columns = ranges
            .iter()
            .map(|&(x0, x1)| {
                let tap = taps
                    .iter()
                    .find(|tap| tap.xs == (x0, x1))
                    .expect("a tap's range");
                let first = (x0 as isize + tap.columns).max(0) as usize;
                let end = ((x1 as isize + tap.columns).max(0) as usize).min(width);
                (first, end)
            })
            .collect();
        let reads = taps
            .iter()
            .zip(&which)
            .map(|(tap, &copy)| (copy, first_row.wrapping_add_signed(tap.shift)))
            .collect();
        Self {
            copies: vec![vec![0.0; shape.in_channels * plane_len]; ranges.len()],
            columns,
            plane_len,
            first_row,
            reads,
        }
    }

    /// Copies one image (`[in_channels, in_h, width]`) in.
    fn fill(&mut self, x: &[f32], [in_h, width]: [usize; 2]) {
        let in_plane = in_h * width;
        for (copy, &(first, end)) in self.copies.iter_mut().zip(&self.columns) {
            for (plane, x) in copy.chunks_mut(self.plane_len).zip(x.chunks(in_plane)) {
                let inside = &mut plane[self.first_row..self.first_row + in_plane];
                for (row, x) in inside.chunks_mut(width).zip(x.chunks(width)) {
                    row[first..end].copy_from_slice(&x[first..end]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{OUT_BLOCK, Padded, Plan, VECTORS};

    /// One image's output, `[out_channels, plane]`.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `padded` holds this image, filled for this plan, and
    /// `weights` its `packed_weights`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn image(
        out: &mut [f32],
        padded: &Padded,
        weights: &[[f32; OUT_BLOCK]],
        plan: &Plan,
    ) {
        let shape = plan.shape;
        let (inputs, outputs, plane) = (shape.in_channels, shape.out_channels, shape.out_plane());
        let patch_len = plan.patch_len();
        // Where input channel c's plane read by tap t starts, at index c · taps + t (the
        // weight's column order).
        let sources: Vec<*const f32> = (0..inputs)
            .flat_map(|c| {
                padded.reads.iter().map(move |&(copy, offset)| {
                    padded.copies[copy][c * padded.plane_len + offset..].as_ptr()
                })
            })
            .collect();
        for (index, o0) in (0..outputs).step_by(OUT_BLOCK).enumerate() {
            let kept = OUT_BLOCK.min(outputs - o0);
            let weights = &weights[index * patch_len..(index + 1) * patch_len];
            let mut rows: Vec<&mut [f32]> = out[o0 * plane..(o0 + kept) * plane]
                .chunks_mut(plane)
                .collect();
            let mut j = 0;
            while j + 8 * VECTORS <= plane {
                // SAFETY: pixels j..j + 16 lie inside the plane and inside every source.
                unsafe { block::<VECTORS>(&mut rows, &sources, weights, j) };
                j += 8 * VECTORS;
            }
            while j + 8 <= plane {
                // SAFETY: as above, for 8 pixels.
                unsafe { block::<1>(&mut rows, &sources, weights, j) };
                j += 8;
            }
            if j < plane {
                // SAFETY: as above, for the last `plane - j` < 8 pixels.
                unsafe { tail(&mut rows, &sources, weights, j, plane - j) };
            }
        }
    }

    /// `rows[o][j..j + 8·V] = Σ_k weights[k][o] · sources[k][j..j + 8·V]`.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `j + 8·V` is within every row and source.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const V: usize>(
        rows: &mut [&mut [f32]],
        sources: &[*const f32],
        weights: &[[f32; OUT_BLOCK]],
        j: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; OUT_BLOCK];
        for (&source, w) in sources.iter().zip(weights) {
            // SAFETY: the caller guarantees pixels j..j + 8·V of every source.
            let xv: [__m256; V] =
                std::array::from_fn(|v| unsafe { _mm256_loadu_ps(source.add(j + 8 * v)) });
            for o in 0..OUT_BLOCK {
                let w = _mm256_set1_ps(w[o]);
                for v in 0..V {
                    acc[o][v] = _mm256_fmadd_ps(w, xv[v], acc[o][v]);
                }
            }
        }
        for (row, acc) in rows.iter_mut().zip(&acc) {
            let row = &mut row[j..j + 8 * V];
            for (v, &acc) in acc.iter().enumerate() {
                // SAFETY: the vector lies inside `row`.
                unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(8 * v), acc) };
            }
        }
    }

    /// [`block`] of one vector for the last `n` < 8 pixels, through masked loads and stores.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `j + n` is within every row and source.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tail(
        rows: &mut [&mut [f32]],
        sources: &[*const f32],
        weights: &[[f32; OUT_BLOCK]],
        j: usize,
        n: usize,
    ) {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
        let mut acc = [_mm256_setzero_ps(); OUT_BLOCK];
        for (&source, w) in sources.iter().zip(weights) {
            // SAFETY: the masked lanes are the `n` pixels the caller guarantees.
            let xv = unsafe { _mm256_maskload_ps(source.add(j), mask) };
            for o in 0..OUT_BLOCK {
                acc[o] = _mm256_fmadd_ps(_mm256_set1_ps(w[o]), xv, acc[o]);
            }
        }
        for (row, acc) in rows.iter_mut().zip(acc) {
            let row = &mut row[j..j + n];
            // SAFETY: the masked store writes the `n` values of `row`.
            unsafe { _mm256_maskstore_ps(row.as_mut_ptr(), mask, acc) };
        }
    }
}
