//! Shifted convolutions (stride 1, output as wide as the input: the ResNet's 3×3 convolutions)
//! on large maps without a patch matrix.
//!
//! Each live tap of such a convolution reads the input plane shifted by one offset, so both
//! products the patch route builds a matrix `kh·kw` times the input for can read the input where
//! it lies:
//! - forward ([`forward`]): `out[o, j] = Σ_(c, tap) w[o, c, tap] · x[c, j + shift(tap)]`;
//! - input gradient ([`flipped`]): a forward convolution of the output gradient;
//! - weight gradient ([`weight_grad`]): `dW[o, c, tap] = Σ_j dy[o, j] · x[c, j + shift(tap)]`,
//!   a dot product of two contiguous rows.
//!
//! Output pixels whose column reads across the left or right edge (the neighbouring row's
//! pixels) must count as padding, as must rows read above or below the input. The kernels
//! read copies with those values zeroed, one copy per distinct range of valid columns (three
//! for a 3×3 kernel with padding 1): small beside the patch matrix.
//!
//! Both run on AVX2 with FMA, 12 sums of 8 lanes in registers; elsewhere, and on maps smaller
//! than [`MIN_PLANE`], the patch route serves.

pub(super) mod flipped;
pub(super) mod forward;
pub(super) mod weight_grad;

use super::Conv2dShape;
use super::patches::ShiftedTap;
use super::plan::Plan;

/// Output pixels per plane from which the direct kernels are taken. Measured per layer shape
/// on a 2-core AVX2 EPYC against the patch route: faster on maps of 32 × 32 and larger with
/// 3-128 channels (the weight gradient of a ×¼ ResNet-18's first stage at 32 px: 2.5 → 1.3 ms
/// per call), within noise at 28 × 28, and slower on smaller maps (down to 10× slower on 4 × 4
/// ones), where each row is a few vectors long and the blocks' bookkeeping dominates.
const MIN_PLANE: usize = 1024;

/// The live taps of `plan` where the direct kernels apply: a shifted convolution on a map of
/// at least [`MIN_PLANE`] pixels, on a processor with AVX2 and FMA.
fn taps(plan: &Plan) -> Option<Vec<ShiftedTap>> {
    #[cfg(target_arch = "x86_64")]
    {
        let shape = plan.shape;
        let usable = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let large = shape.out_plane() >= MIN_PLANE;
        plan.reads.shifted_taps(shape).filter(|_| usable && large)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = plan;
        None
    }
}

/// The distinct ranges of valid output columns among `taps`, sorted, and for each tap the
/// index of its own.
fn column_ranges(taps: &[ShiftedTap]) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut ranges: Vec<(usize, usize)> = taps.iter().map(|tap| tap.xs).collect();
    ranges.sort_unstable();
    ranges.dedup();
    let which = taps
        .iter()
        .map(|tap| ranges.binary_search(&tap.xs).unwrap_or(0))
        .collect();
    (ranges, which)
}

/// The rows of `shape`'s input that some tap reads above (`top`) and below (`bottom`) it.
fn padding_rows(shape: &Conv2dShape, taps: &[ShiftedTap]) -> (usize, usize) {
    let (in_h, out_h) = (shape.in_size[0] as isize, shape.out_size()[0] as isize);
    let top = taps.iter().map(|tap| -tap.rows).max().unwrap_or(0).max(0);
    let bottom = taps
        .iter()
        .map(|tap| out_h - 1 + tap.rows - (in_h - 1))
        .max()
        .unwrap_or(0)
        .max(0);
    (top as usize, bottom as usize)
}
