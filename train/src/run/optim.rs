//! The optimizer and the learning-rate schedules of every run.

use burn::optim::ModuleOptimizer;
use exemplar_kernels::sgd::FusedSgd;

/// SGD with PyTorch's semantics (no dampening, weight decay added to the gradient; burn's own
/// default dampens by 0.1), as MoCo and torchvision configure it. One fused pass per parameter on
/// the CPU (`exemplar_kernels::sgd`), burn's operations elsewhere.
pub fn sgd(momentum: f64, weight_decay: f64) -> ModuleOptimizer {
    FusedSgd {
        momentum: momentum as f32,
        weight_decay: weight_decay as f32,
    }
    .init()
}

/// Half-period cosine from `base` at step 0 to zero at `total` (evaluated per step: a smooth
/// version of MoCo's per-epoch `--cos`).
pub fn cosine(base: f64, step: usize, total: usize) -> f64 {
    let progress = step as f64 / total.max(1) as f64;
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Linear warm-up over the first 5% of steps (at most 200), then cosine decay to zero.
pub fn warmup_cosine(base: f64, step: usize, total: usize) -> f64 {
    let warmup = (total / 20).clamp(1, 200);
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    cosine(base, step - warmup, total.saturating_sub(warmup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedules_start_end_and_warm_up_as_documented() {
        assert_eq!(cosine(0.4, 0, 100), 0.4);
        assert!((cosine(0.4, 50, 100) - 0.2).abs() < 1e-12);
        assert!(cosine(0.4, 100, 100).abs() < 1e-12);
        // 1000 steps warm up over 50: 1/50 of the rate first, the full rate after.
        assert!((warmup_cosine(1.0, 0, 1000) - 0.02).abs() < 1e-12);
        assert_eq!(warmup_cosine(1.0, 49, 1000), 1.0);
        assert_eq!(warmup_cosine(1.0, 50, 1000), 1.0);
        assert!(warmup_cosine(1.0, 999, 1000) < 1e-4);
        // Short runs warm up for one step.
        assert_eq!(warmup_cosine(1.0, 0, 10), 1.0);
    }
}
