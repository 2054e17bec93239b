//! The outlines of the ten object classes, in each shape's unit frame (the object's scale is 1).

/// Whether the point `(u, v)` of the shape's unit frame lies inside shape `class`.
pub(super) fn shape_contains(class: usize, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    match class {
        0 => r <= 1.0,
        1 => u.abs().max(v.abs()) <= 0.8,
        2 => v <= 0.7 && v >= 1.9 * u.abs() - 1.0,
        3 => u.abs() + v.abs() / 0.55 <= 1.0,
        4 => (u.abs() <= 0.3 && v.abs() <= 0.95) || (v.abs() <= 0.3 && u.abs() <= 0.95),
        5 => (0.55..=1.0).contains(&r),
        6 => r <= 0.6 + 0.4 * (5.0 * v.atan2(u)).cos(),
        7 => r <= 1.0 && (u - 0.55) * (u - 0.55) + v * v > 0.75 * 0.75,
        8 => u * u + (v / 0.5) * (v / 0.5) <= 1.0,
        9 => r <= 1.0 && v >= 0.0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    //! No class can be made into another by what the data and its augmentations do to an object:
    //! any rotation, any scale, a flip, and the random resized crop's aspect change (up to 4/3
    //! along the image's axes, after the object's rotation).

    use super::shape_contains;
    use crate::synthetic::OBJECT_CLASSES;

    /// A shape's inside test in its unit frame.
    type Shape = dyn Fn(f32, f32) -> bool;

    /// Sampling grid over `[-EXTENT, EXTENT]²` of the comparison frame.
    const GRID: usize = 40;
    const EXTENT: f32 = 1.6;

    /// The largest aspect change of the random resized crop (torchvision's 3/4–4/3).
    const MAX_ASPECT: f32 = 4.0 / 3.0;

    /// A point set sampled on the grid (row-major), with its area and centroid in grid cells.
    struct Raster {
        inside: Vec<bool>,
        area: f32,
        centroid: [f32; 2],
    }

    fn grid_point(i: usize) -> [f32; 2] {
        let step = 2.0 * EXTENT / GRID as f32;
        let (x, y) = (i % GRID, i / GRID);
        [
            -EXTENT + (x as f32 + 0.5) * step,
            -EXTENT + (y as f32 + 0.5) * step,
        ]
    }

    fn raster(contains: impl Fn([f32; 2]) -> bool) -> Raster {
        let inside: Vec<bool> = (0..GRID * GRID).map(|i| contains(grid_point(i))).collect();
        let mut sum = [0.0f32; 2];
        let mut area = 0.0;
        for (i, _) in inside.iter().enumerate().filter(|&(_, &v)| v) {
            let p = grid_point(i);
            sum = [sum[0] + p[0], sum[1] + p[1]];
            area += 1.0;
        }
        Raster {
            inside,
            area,
            centroid: [sum[0] / area, sum[1] / area],
        }
    }

    fn iou(a: &Raster, b: &Raster) -> f32 {
        let both = a
            .inside
            .iter()
            .zip(&b.inside)
            .filter(|(x, y)| **x && **y)
            .count();
        let either = a
            .inside
            .iter()
            .zip(&b.inside)
            .filter(|(x, y)| **x || **y)
            .count();
        both as f32 / either as f32
    }

    /// A pose of shape `a` in `b`'s frame: rotate by `theta` (after a flip), stretch x by
    /// `aspect`, rotate by `phi`; scaled to `b`'s area and moved onto `b`'s centroid.
    #[derive(Debug, Clone, Copy)]
    struct Pose {
        flip: bool,
        theta: f32,
        aspect: f32,
        phi: f32,
    }

    fn posed(shape: &Shape, pose: Pose, a: &Raster, b: &Raster) -> Raster {
        let scale = (b.area / (a.area * pose.aspect)).sqrt();
        let (ct, st) = (pose.theta.cos(), pose.theta.sin());
        let (cp, sp) = (pose.phi.cos(), pose.phi.sin());
        raster(|[x, y]| {
            // Undo, in reverse order: centroid, scale, phi, aspect, theta, flip.
            let (x, y) = ((x - b.centroid[0]) / scale, (y - b.centroid[1]) / scale);
            let (x, y) = (x * cp + y * sp, -x * sp + y * cp);
            let x = x / pose.aspect;
            let (x, y) = (x * ct + y * st, -x * st + y * ct);
            let x = if pose.flip { -x } else { x };
            shape(x + a.centroid[0], y + a.centroid[1])
        })
    }

    /// The best overlap of shape `a`, in any pose, with shape `b`: a search over a 15° grid of
    /// both rotations, five aspects and the flip, then a local refinement of the best pose.
    fn best_overlap(a: &Shape, b: &Shape) -> (f32, Pose) {
        let (ra, rb) = (raster(|[x, y]| a(x, y)), raster(|[x, y]| b(x, y)));
        let score = |pose: Pose| iou(&posed(a, pose, &ra, &rb), &rb);
        let step = 15f32.to_radians();
        let aspects = [1.0 / MAX_ASPECT, 0.866, 1.0, 1.0 / 0.866, MAX_ASPECT];
        let mut best = (
            0.0,
            Pose {
                flip: false,
                theta: 0.0,
                aspect: 1.0,
                phi: 0.0,
            },
        );
        for flip in [false, true] {
            for &aspect in &aspects {
                for t in 0..24 {
                    // With no stretch the two rotations are one: phi = 0 covers them all.
                    let phis = if aspect == 1.0 { 1 } else { 24 };
                    for p in 0..phis {
                        let pose = Pose {
                            flip,
                            theta: t as f32 * step,
                            aspect,
                            phi: p as f32 * step,
                        };
                        let s = score(pose);
                        if s > best.0 {
                            best = (s, pose);
                        }
                    }
                }
            }
        }
        let mut delta = step / 2.0;
        while delta > 0.5f32.to_radians() {
            let (s, pose) = best;
            // One step of each rotation and of the aspect, both ways.
            let steps = [
                (delta, 0.0, 1.0),
                (-delta, 0.0, 1.0),
                (0.0, delta, 1.0),
                (0.0, -delta, 1.0),
                (0.0, 0.0, 1.0 + delta),
                (0.0, 0.0, 1.0 / (1.0 + delta)),
            ];
            let tries = steps.map(|(d_theta, d_phi, stretch)| Pose {
                theta: pose.theta + d_theta,
                phi: pose.phi + d_phi,
                aspect: (pose.aspect * stretch).clamp(1.0 / MAX_ASPECT, MAX_ASPECT),
                ..pose
            });
            let improved = tries
                .into_iter()
                .map(|p| (score(p), p))
                .fold(best, |b, t| if t.0 > b.0 { t } else { b });
            if improved.0 > s {
                best = improved;
            } else {
                delta /= 2.0;
            }
        }
        best
    }

    /// The most two different classes may overlap in their best poses. A circle and a square of
    /// equal area overlap 0.85 (IoU), and no one takes those two for each other.
    const MOST_OVERLAP: f32 = 0.88;

    fn class(c: usize) -> impl Fn(f32, f32) -> bool {
        move |u, v| shape_contains(c, u, v)
    }

    #[test]
    fn no_class_can_be_posed_as_another() {
        let mut too_close = Vec::new();
        for (a, a_name) in OBJECT_CLASSES.iter().enumerate() {
            for (b, b_name) in OBJECT_CLASSES.iter().enumerate().skip(a + 1) {
                let (overlap, pose) = best_overlap(&class(a), &class(b));
                if overlap > MOST_OVERLAP {
                    too_close.push(format!(
                        "{a_name} as {b_name}: IoU {overlap:.3} at {pose:?}"
                    ));
                }
            }
        }
        assert!(
            too_close.is_empty(),
            "classes within tolerance of each other: {too_close:#?}"
        );
    }

    /// The search finds what it should: the earlier diamond, a square turned 45°, is a square;
    /// a triangle stretched by 1.25 and turned 100° is that triangle.
    #[test]
    fn the_search_finds_a_posed_copy() {
        let old_diamond = |u: f32, v: f32| u.abs() + v.abs() <= 1.0;
        assert!(best_overlap(&class(1), &old_diamond).0 > 0.97);
        let turned = |u: f32, v: f32| {
            let (c, s) = (100f32.to_radians().cos(), 100f32.to_radians().sin());
            shape_contains(2, (u * c + v * s) / 1.25, -u * s + v * c)
        };
        assert!(best_overlap(&class(2), &turned).0 > 0.95);
        for (c, name) in OBJECT_CLASSES.iter().enumerate() {
            assert!(best_overlap(&class(c), &class(c)).0 > 0.999, "{name}");
        }
    }
}
