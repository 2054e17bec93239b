//! How much of a picture a reconstruction keeps beyond its colours: the error left after matching
//! the reconstruction's colour statistics to the picture's, and the correlation of their edges.
//!
//! Raw pixel error mostly measures hue and contrast, which contrastive training teaches features
//! to ignore (colour jitter, grayscale), and barely measures where things are, which is what
//! the paper's inversion figures show. Both scores here look at structure.

use exemplar_inference::Image;

/// Pixel MSE (values in `[0, 1]`) after giving each channel of the reconstruction the picture's
/// mean and standard deviation. A flat image scores the picture's own variance, which is the
/// pixel MSE of a flat image of the picture's mean colour: the reference a reconstruction must
/// beat to have kept anything.
pub fn colour_matched_mse(picture: &Image, reconstruction: &Image) -> f32 {
    let pixels = picture.width * picture.height;
    let mut total = 0.0;
    for c in 0..3 {
        let channel =
            |image: &Image| -> Vec<f32> { image.data[c..].iter().step_by(3).copied().collect() };
        let (p, r) = (channel(picture), channel(reconstruction));
        let (p_mean, p_std) = mean_std(&p);
        let (r_mean, r_std) = mean_std(&r);
        let gain = if r_std > 1e-6 { p_std / r_std } else { 0.0 };
        total += p
            .iter()
            .zip(&r)
            .map(|(p, r)| {
                let matched = p_mean + (r - r_mean) * gain;
                (p - matched) * (p - matched)
            })
            .sum::<f32>();
    }
    total / (3 * pixels).max(1) as f32
}

/// Pearson correlation of the two images' luminance gradient magnitudes (central differences,
/// inside the border): 1 when the edges are where the picture's are, about 0 for noise, 0 for a
/// flat image.
pub fn edge_correlation(picture: &Image, reconstruction: &Image) -> f32 {
    let (a, b) = (edges(picture), edges(reconstruction));
    let ((a_mean, a_std), (b_mean, b_std)) = (mean_std(&a), mean_std(&b));
    if a_std < 1e-6 || b_std < 1e-6 {
        return 0.0;
    }
    let covariance = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - a_mean) * (y - b_mean))
        .sum::<f32>()
        / a.len() as f32;
    covariance / (a_std * b_std)
}

fn luminance(image: &Image, x: usize, y: usize) -> f32 {
    let [r, g, b] = image.pixel(x, y);
    0.299 * r + 0.587 * g + 0.114 * b
}

fn edges(image: &Image) -> Vec<f32> {
    let (w, h) = (image.width, image.height);
    let mut out = Vec::with_capacity(w.saturating_sub(2) * h.saturating_sub(2));
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let gx = luminance(image, x + 1, y) - luminance(image, x - 1, y);
            let gy = luminance(image, x, y + 1) - luminance(image, x, y - 1);
            out.push((gx * gx + gy * gy).sqrt());
        }
    }
    out
}

/// Mean and population standard deviation, summed in f64: in f32 the mean of a constant channel
/// comes out a few ulps off, which would read as a tiny spread and blow up its colour match.
fn mean_std(values: &[f32]) -> (f32, f32) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt() as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inversion::pixel_mse;

    /// A picture with structure: a bright disc on a dark gradient.
    fn picture() -> Image {
        let mut image = Image::new(24, 24);
        for y in 0..24 {
            for x in 0..24 {
                let disc = ((x as f32 - 12.0).powi(2) + (y as f32 - 10.0).powi(2)) < 36.0;
                let base = x as f32 / 48.0;
                let rgb = if disc {
                    [0.9, 0.7, 0.2]
                } else {
                    [base, 0.2, 0.3]
                };
                image.set_pixel(x, y, rgb);
            }
        }
        image
    }

    #[test]
    fn colours_do_not_count_structure_does() {
        let picture = picture();
        assert!(colour_matched_mse(&picture, &picture) < 1e-10);
        assert!((edge_correlation(&picture, &picture) - 1.0).abs() < 1e-5);
        // Another hue and contrast, the same structure: nothing lost.
        let mut recoloured = picture.clone();
        for (i, v) in recoloured.data.iter_mut().enumerate() {
            *v = [0.3, 0.8, 0.5][i % 3] * *v + 0.1;
        }
        assert!(pixel_mse(&picture, &recoloured) > 0.01);
        assert!(colour_matched_mse(&picture, &recoloured) < 1e-8);
        assert!(edge_correlation(&picture, &recoloured) > 0.99);
        // A flat image scores the flat-colour reference, and no edges.
        let mut flat = picture.clone();
        for c in 0..3 {
            let mean = picture.data[c..].iter().step_by(3).sum::<f32>() / (24.0 * 24.0);
            flat.data[c..].iter_mut().step_by(3).for_each(|v| *v = mean);
        }
        let reference = pixel_mse(&picture, &flat);
        let matched = colour_matched_mse(&picture, &flat);
        assert!(
            (matched - reference).abs() < 1e-6,
            "{matched} against {reference}"
        );
        assert_eq!(edge_correlation(&picture, &flat), 0.0);
        // The disc moved by 6 px keeps the colours but not the structure.
        let mut moved = Image::new(24, 24);
        for y in 0..24 {
            for x in 0..24 {
                moved.set_pixel(x, y, picture.pixel((x + 6) % 24, y));
            }
        }
        assert!(
            colour_matched_mse(&picture, &moved) > colour_matched_mse(&picture, &recoloured) + 0.01
        );
        assert!(edge_correlation(&picture, &moved) < 0.5);
    }
}
