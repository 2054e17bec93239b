//! Facial landmark outputs: the network predicts each point relative to its input (`x / width`,
//! `y / height`, in `[0, 1]`), which survives the stretch resize unchanged, so mapping back to
//! the submitted image is one multiplication per axis.

use std::convert::Infallible;

use serde::Serialize;

use crate::served::{NoOptions, Output, ServedModel, ServedTask};

/// Input-relative coordinates of points in pixels of a `width × height` image.
pub fn normalize(points: &[[f32; 2]], [width, height]: [f32; 2]) -> Vec<f32> {
    points
        .iter()
        .flat_map(|&[x, y]| [x / width, y / height])
        .collect()
}

/// Pixel coordinates in a `width × height` image of the network output `x0, y0, x1, y1, …`.
pub fn denormalize(output: &[f32], [width, height]: [f32; 2]) -> Vec<[f32; 2]> {
    output
        .chunks_exact(2)
        .map(|p| [p[0] * width, p[1] * height])
        .collect()
}

/// Mean point-to-point distance divided by the distance between points `normalizer` (the eye
/// centres: the inter-ocular normalisation of MAFL/300-W). `None` when that distance is zero.
pub fn normalized_error(
    predicted: &[[f32; 2]],
    truth: &[[f32; 2]],
    normalizer: [usize; 2],
) -> Option<f32> {
    assert_eq!(predicted.len(), truth.len(), "point counts differ");
    let distance =
        |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let norm = distance(truth[normalizer[0]], truth[normalizer[1]]);
    if norm <= 0.0 || truth.is_empty() {
        return None;
    }
    let total: f32 = predicted
        .iter()
        .zip(truth)
        .map(|(&p, &t)| distance(p, t))
        .sum();
    Some(total / truth.len() as f32 / norm)
}

/// One named landmark, in the submitted image's pixels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Point {
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// `POST /v1/landmarks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LandmarksAnswer {
    pub model: String,
    pub width: usize,
    pub height: usize,
    pub points: Vec<Point>,
}

/// Landmarks, served: the card's point names with the points in the submitted image's pixels.
pub struct Locate;

impl ServedTask for Locate {
    const TASK: &'static str = "landmarks";
    const PATH: &'static str = "/v1/landmarks";
    const SUMMARY: &'static str = "Facial landmarks: named (x, y) points";
    type Query = NoOptions;
    type Options = ();
    type Error = Infallible;
    type Answer = LandmarksAnswer;

    fn options(_: &ServedModel, _: NoOptions) -> Result<(), Infallible> {
        Ok(())
    }

    fn answer(
        model: &ServedModel,
        _: (),
        [width, height]: [usize; 2],
        output: Output,
    ) -> LandmarksAnswer {
        let points = denormalize(&output.values, [width as f32, height as f32])
            .into_iter()
            .zip(&model.card.class_names)
            .map(|([x, y], name)| Point {
                name: name.clone(),
                x,
                y,
            })
            .collect();
        LandmarksAnswer {
            model: model.name.to_string(),
            width,
            height,
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_denormalize_are_inverse() {
        let points = [[10.0, 20.0], [30.0, 5.0]];
        let rel = normalize(&points, [40.0, 50.0]);
        assert_eq!(rel, vec![0.25, 0.4, 0.75, 0.1]);
        assert_eq!(denormalize(&rel, [40.0, 50.0]), points.to_vec());
    }

    #[test]
    fn inter_ocular_error_of_a_hand_worked_case() {
        // Eyes 10 px apart; one of three points is off by 3-4-5 px.
        let truth = [[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]];
        let predicted = [[0.0, 0.0], [10.0, 0.0], [8.0, 9.0]];
        let e = normalized_error(&predicted, &truth, [0, 1]).unwrap();
        assert!((e - 5.0 / 3.0 / 10.0).abs() < 1e-6);
        assert_eq!(normalized_error(&predicted, &[[1.0, 1.0]; 3], [0, 1]), None);
    }
}
