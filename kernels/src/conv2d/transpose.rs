//! A blocked matrix transpose, for the weight gradient's patch matrix.

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
