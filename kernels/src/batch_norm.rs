//! Training-mode batch normalisation on `f32` NCHW buffers, forward and backward, each as two
//! passes: per-channel sums (parallel over channels), then the elementwise map (parallel over
//! images).
//!
//! It computes what burn's `batch_norm_train` does: the batch mean and the biased variance of
//! every channel, `y = (x − mean) / √(var + ε) · γ + β`, and returns the statistics for the
//! running averages. The backward pass is the closed form
//! `dx = γ / √(var + ε) · (dy − mean(dy) − x̂ · mean(dy · x̂))`, `dγ = Σ dy · x̂`, `dβ = Σ dy`.
//! Sums are accumulated in `f64`.

use rayon::prelude::*;

/// `[batch, channels, plane]`: the spatial axes flattened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNormShape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl BatchNormShape {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel.
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// The values of `channel` in image after image.
    fn channel<'a>(&self, x: &'a [f32], channel: usize) -> impl Iterator<Item = &'a [f32]> {
        let image = self.channels * self.plane;
        (0..self.batch).map(move |b| {
            let start = b * image + channel * self.plane;
            &x[start..start + self.plane]
        })
    }
}

/// The output of [`forward`]: normalised values and the batch statistics per channel.
pub struct Normalized {
    pub output: Vec<f32>,
    pub mean: Vec<f32>,
    /// Biased (divided by the count, as burn's `batch_norm_train` returns it).
    pub variance: Vec<f32>,
}

pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    shape: &BatchNormShape,
) -> Normalized {
    check(x, gamma, shape);
    assert_eq!(beta.len(), shape.channels, "batch norm beta length");
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = shape.channel(x, c).map(|plane| sum_f64(plane, |v| v)).sum();
            let mean = sum / shape.count();
            let squares: f64 = shape
                .channel(x, c)
                .map(|plane| sum_f64(plane, |v| (v - mean) * (v - mean)))
                .sum();
            (mean as f32, (squares / shape.count()) as f32)
        })
        .unzip();
    // y = x · scale + shift per channel.
    let scale: Vec<f32> = (0..shape.channels)
        .map(|c| gamma[c] / (variance[c] as f64 + epsilon).sqrt() as f32)
        .collect();
    let shift: Vec<f32> = (0..shape.channels)
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    let mut output = vec![0.0; x.len()];
    map_images(&mut output, x, None, shape, |c, out, x, _| {
        let (a, b) = (scale[c], shift[c]);
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * a + b);
    });
    Normalized {
        output,
        mean,
        variance,
    }
}

/// Gradients of [`forward`]: `(dx, dγ, dβ)`, given its input, its statistics and `dy`.
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    out_grad: &[f32],
    shape: &BatchNormShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    check(x, gamma, shape);
    assert_eq!(out_grad.len(), x.len(), "batch norm output-gradient length");
    let inv_std: Vec<f64> = variance
        .iter()
        .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
        .collect();
    // Σ dy and Σ dy · x̂ per channel.
    let (gamma_grad, beta_grad): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c] as f64;
            let (mut dy_sum, mut dy_xhat) = (0.0f64, 0.0f64);
            for (dy, x) in shape.channel(out_grad, c).zip(shape.channel(x, c)) {
                dy_sum += sum_f64(dy, |g| g);
                dy_xhat += sum_products_f64(dy, x, |v| v - m);
            }
            ((dy_xhat * inv_std[c]) as f32, dy_sum as f32)
        })
        .unzip();
    // dx = k · (dy − mean(dy) − x̂ · mean(dy · x̂)), k = γ / σ; with x̂ = (x − μ) / σ this is
    // dx = k · dy + (x · a + b) per channel.
    let count = shape.count();
    let coefficients: Vec<(f32, f32, f32)> = (0..shape.channels)
        .map(|c| {
            let k = gamma[c] as f64 * inv_std[c];
            let mean_dy = beta_grad[c] as f64 / count;
            let mean_dy_xhat = gamma_grad[c] as f64 / count;
            let a = -k * mean_dy_xhat * inv_std[c];
            let b = -k * mean_dy - a * mean[c] as f64;
            (k as f32, a as f32, b as f32)
        })
        .collect();
    let mut x_grad = vec![0.0; x.len()];
    map_images(&mut x_grad, x, Some(out_grad), shape, |c, out, x, dy| {
        let (k, a, b) = coefficients[c];
        let dy = dy.expect("given");
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
            *o = k * g + v * a + b;
        }
    });
    (x_grad, gamma_grad, beta_grad)
}

/// Partial sums per lane: eight independent chains, which the compiler turns into vector adds
/// (one chain of dependent `f64` adds was a tenth of a narrow network's training step).
const LANES: usize = 8;

/// `Σ term(v)` over `values`, in `f64`.
#[inline(always)]
fn sum_f64(values: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v as f64);
        }
    }
    lanes.iter().sum::<f64>() + rest.iter().map(|&v| term(v as f64)).sum::<f64>()
}

/// `Σ g · term(v)` over pairs of `gs` and `vs`, in `f64`.
#[inline(always)]
fn sum_products_f64(gs: &[f32], vs: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (g_chunks, v_chunks) = (gs.chunks_exact(LANES), vs.chunks_exact(LANES));
    let rest: f64 = g_chunks
        .remainder()
        .iter()
        .zip(v_chunks.remainder())
        .map(|(&g, &v)| g as f64 * term(v as f64))
        .sum();
    for (g, v) in g_chunks.zip(v_chunks) {
        for ((lane, &g), &v) in lanes.iter_mut().zip(g).zip(v) {
            *lane += g as f64 * term(v as f64);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

fn check(x: &[f32], gamma: &[f32], shape: &BatchNormShape) {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    assert_eq!(gamma.len(), shape.channels, "batch norm gamma length");
}

/// Runs `f(channel, out, x, dy)` on every channel plane, images in parallel.
fn map_images(
    out: &mut [f32],
    x: &[f32],
    dy: Option<&[f32]>,
    shape: &BatchNormShape,
    f: impl Fn(usize, &mut [f32], &[f32], Option<&[f32]>) + Sync,
) {
    let image = shape.channels * shape.plane;
    if image == 0 {
        return;
    }
    out.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .enumerate()
        .for_each(|(b, (out, x))| {
            let dy = dy.map(|dy| &dy[b * image..(b + 1) * image]);
            for c in 0..shape.channels {
                let range = c * shape.plane..(c + 1) * shape.plane;
                f(
                    c,
                    &mut out[range.clone()],
                    &x[range.clone()],
                    dy.map(|dy| &dy[range]),
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1, 3): a mean away from zero, as activations have.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        crate::test_values(len, seed)
            .into_iter()
            .map(|v| 2.0 * v + 1.0)
            .collect()
    }

    const SHAPE: BatchNormShape = BatchNormShape {
        batch: 3,
        channels: 4,
        plane: 5,
    };

    /// The loss Σ w · bn(x) in f64, for finite differences.
    fn loss(x: &[f32], gamma: &[f32], beta: &[f32], weights: &[f32]) -> f64 {
        let out = forward(x, gamma, beta, 1e-5, &SHAPE).output;
        out.iter()
            .zip(weights)
            .map(|(&o, &w)| o as f64 * w as f64)
            .sum()
    }

    #[test]
    fn forward_normalises_each_channel() {
        let x = values(SHAPE.len(), 1);
        let gamma = vec![1.0, 2.0, 0.5, -1.0];
        let beta = vec![0.0, 1.0, -1.0, 0.25];
        let out = forward(&x, &gamma, &beta, 1e-5, &SHAPE);
        for c in 0..SHAPE.channels {
            let ys: Vec<f64> = SHAPE
                .channel(&out.output, c)
                .flatten()
                .map(|&v| v as f64)
                .collect();
            let mean = ys.iter().sum::<f64>() / ys.len() as f64;
            let var = ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64;
            assert!(
                (mean - beta[c] as f64).abs() < 1e-5,
                "channel {c} mean {mean}"
            );
            let want = (gamma[c] as f64).powi(2);
            assert!((var - want).abs() < 1e-3 * want, "channel {c} var {var}");
            let xs: Vec<f64> = SHAPE.channel(&x, c).flatten().map(|&v| v as f64).collect();
            let x_mean = xs.iter().sum::<f64>() / xs.len() as f64;
            assert!((out.mean[c] as f64 - x_mean).abs() < 1e-6);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = values(SHAPE.len(), 2);
        let gamma = vec![1.0, 2.0, 0.5, -1.0];
        let beta = vec![0.0, 1.0, -1.0, 0.25];
        let weights = values(SHAPE.len(), 3);
        let stats = forward(&x, &gamma, &beta, 1e-5, &SHAPE);
        let (dx, dgamma, dbeta) = backward(
            &x,
            &gamma,
            &stats.mean,
            &stats.variance,
            1e-5,
            &weights,
            &SHAPE,
        );
        let h = 1e-2f32;
        let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        for i in 0..x.len() {
            let want = numeric(&|d| {
                let mut x = x.clone();
                x[i] += d;
                loss(&x, &gamma, &beta, &weights)
            });
            assert!(
                (dx[i] as f64 - want).abs() < 2e-3 * (1.0 + want.abs()),
                "dx[{i}]"
            );
        }
        for c in 0..SHAPE.channels {
            let want = numeric(&|d| {
                let mut g = gamma.clone();
                g[c] += d;
                loss(&x, &g, &beta, &weights)
            });
            assert!(
                (dgamma[c] as f64 - want).abs() < 2e-3 * (1.0 + want.abs()),
                "dγ[{c}]"
            );
            let want = numeric(&|d| {
                let mut b = beta.clone();
                b[c] += d;
                loss(&x, &gamma, &b, &weights)
            });
            assert!(
                (dbeta[c] as f64 - want).abs() < 2e-3 * (1.0 + want.abs()),
                "dβ[{c}]"
            );
        }
    }
}
