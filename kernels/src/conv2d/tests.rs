//! The kernels against the definition of a convolution, one multiply-add at a time.

use super::*;

/// The definition, one multiply-add at a time.
fn naive(x: &[f32], w: &[f32], s: &Conv2dShape) -> Vec<f32> {
    let [oh, ow] = s.out_size();
    let [ih, iw] = s.in_size;
    let [kh, kw] = s.kernel;
    let mut out = vec![0.0; s.output_len()];
    for b in 0..s.batch {
        for o in 0..s.out_channels {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = 0.0f64;
                    for c in 0..s.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * s.stride[0] + ky * s.dilation[0]) as isize
                                    - s.padding[0].0 as isize;
                                let ix = (xo * s.stride[1] + kx * s.dilation[1]) as isize
                                    - s.padding[1].0 as isize;
                                if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                    continue;
                                }
                                let xv = x[((b * s.in_channels + c) * ih + iy as usize) * iw
                                    + ix as usize];
                                let wv = w[((o * s.in_channels + c) * kh + ky) * kw + kx];
                                acc += (xv * wv) as f64;
                            }
                        }
                    }
                    out[((b * s.out_channels + o) * oh + y) * ow + xo] = acc as f32;
                }
            }
        }
    }
    out
}

use crate::test_values as values;

fn shapes() -> Vec<Conv2dShape> {
    let base = Conv2dShape {
        batch: 3,
        in_channels: 4,
        in_size: [9, 7],
        out_channels: 5,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    };
    vec![
        base,
        Conv2dShape {
            stride: [2, 2],
            ..base
        },
        Conv2dShape {
            kernel: [1, 1],
            padding: [(0, 0), (0, 0)],
            ..base
        },
        Conv2dShape {
            kernel: [1, 1],
            padding: [(0, 0), (0, 0)],
            stride: [2, 2],
            ..base
        },
        Conv2dShape {
            kernel: [7, 7],
            padding: [(3, 3), (3, 3)],
            stride: [2, 2],
            in_channels: 3,
            ..base
        },
        Conv2dShape {
            dilation: [2, 3],
            padding: [(2, 1), (0, 3)],
            ..base
        },
        Conv2dShape {
            kernel: [2, 3],
            stride: [3, 1],
            padding: [(0, 1), (2, 0)],
            ..base
        },
        // Larger than the input with no padding: an empty output.
        Conv2dShape {
            kernel: [11, 3],
            padding: [(0, 0), (0, 0)],
            ..base
        },
        // Many small images, grouped into one product.
        Conv2dShape {
            batch: 37,
            in_size: [2, 2],
            ..base
        },
        // A 1×1 map: only the centre tap reads an input pixel.
        Conv2dShape {
            batch: 5,
            in_size: [1, 1],
            ..base
        },
        // Maps large enough for shifted copies (stride 1) and for the walk over patch rows
        // (7 × 7, stride 2): the small ones above gather through a table.
        Conv2dShape {
            in_size: [12, 11],
            ..base
        },
        Conv2dShape {
            in_size: [12, 11],
            dilation: [2, 1],
            padding: [(2, 2), (1, 1)],
            ..base
        },
        Conv2dShape {
            kernel: [7, 7],
            padding: [(3, 3), (3, 3)],
            stride: [2, 2],
            in_size: [58, 50],
            batch: 1,
            in_channels: 1,
            out_channels: 2,
            ..base
        },
        // A 1-pixel-high map: the top and bottom kernel rows read only padding.
        Conv2dShape {
            in_size: [1, 6],
            ..base
        },
    ]
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{what}[{i}]: {g} != {w}"
        );
    }
}

#[test]
fn forward_matches_the_definition() {
    for shape in shapes() {
        let x = values(shape.input_len(), 1);
        let w = values(shape.weight_len(), 2);
        assert_close(
            &forward(&x, &w, &shape),
            &naive(&x, &w, &shape),
            &format!("{shape:?}"),
        );
    }
}

/// The gradients satisfy ⟨dy, conv(x, w)⟩'s derivatives: for the linear map
/// x ↦ conv(x, w), ⟨dy, conv(e_i, w)⟩ is the i-th input gradient, and likewise for w.
#[test]
fn gradients_match_the_definition() {
    for shape in shapes() {
        let x = values(shape.input_len(), 3);
        let w = values(shape.weight_len(), 4);
        let dy = values(shape.output_len(), 5);
        let (dx, dw) = backward(&x, &w, &dy, &shape, true, true);
        let (dx, dw) = (dx.unwrap(), dw.unwrap());
        let dot = |out: &[f32]| {
            out.iter()
                .zip(&dy)
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>()
        };
        let mut basis = vec![0.0; x.len()];
        for i in 0..x.len() {
            basis[i] = 1.0;
            let want = dot(&naive(&basis, &w, &shape)) as f32;
            basis[i] = 0.0;
            assert!(
                (dx[i] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{shape:?} dx[{i}]"
            );
        }
        let mut basis = vec![0.0; w.len()];
        for i in 0..w.len() {
            basis[i] = 1.0;
            let want = dot(&naive(&x, &basis, &shape)) as f32;
            basis[i] = 0.0;
            assert!(
                (dw[i] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{shape:?} dw[{i}]"
            );
        }
        // Asking for one gradient gives the same one.
        let (only_dx, none) = backward(&x, &w, &dy, &shape, true, false);
        assert!(none.is_none());
        assert_close(&only_dx.unwrap(), &dx, "input gradient alone");
        let (none, only_dw) = backward(&x, &w, &dy, &shape, false, true);
        assert!(none.is_none());
        assert_close(&only_dw.unwrap(), &dw, "weight gradient alone");
    }
}

/// Maps large enough for the direct kernels (`direct`), with channel counts that leave partial
/// register blocks, a dilated kernel whose taps leave two columns on each side wrapped, and a
/// plane that is not a whole number of vectors. The weight gradient is checked value by value as above; the input gradient
/// through ⟨dx, v⟩ = ⟨dy, conv(v, w)⟩ for a few random `v` (one naive convolution each).
#[test]
fn large_maps_match_the_definition() {
    let base = Conv2dShape {
        batch: 2,
        in_channels: 5,
        in_size: [32, 34],
        out_channels: 7,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    };
    let dilated = Conv2dShape {
        dilation: [1, 2],
        padding: [(0, 2), (2, 2)],
        ..base
    };
    // 1035 pixels: the direct forward's last 11 in one vector and a masked 3; batch 6, so
    // that each part holds two images, the second read through the first one's buffers.
    let ragged = Conv2dShape {
        batch: 6,
        in_size: [45, 23],
        ..base
    };
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>();
    for shape in [base, dilated, ragged] {
        assert!(shape.out_plane() >= 1024, "{shape:?} is too small");
        let x = values(shape.input_len(), 6);
        let w = values(shape.weight_len(), 7);
        let dy = values(shape.output_len(), 8);
        assert_close(&forward(&x, &w, &shape), &naive(&x, &w, &shape), "forward");
        let (dx, dw) = backward(&x, &w, &dy, &shape, true, true);
        let (dx, dw) = (dx.unwrap(), dw.unwrap());
        let mut basis = vec![0.0; w.len()];
        for i in 0..w.len() {
            basis[i] = 1.0;
            let want = dot(&dy, &naive(&x, &basis, &shape)) as f32;
            basis[i] = 0.0;
            assert!(
                (dw[i] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{shape:?} dw[{i}]: {} != {want}",
                dw[i]
            );
        }
        for seed in 0..3 {
            let v = values(x.len(), 10 + seed);
            let (got, want) = (dot(&dx, &v), dot(&dy, &naive(&v, &w, &shape)));
            assert!(
                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{shape:?} dx: {got} != {want}"
            );
        }
    }
}

#[test]
fn transpose_moves_every_value() {
    // Sizes that are and are not multiples of the tile.
    for (rows, cols) in [(1, 1), (3, 40), (8, 8), (16, 16), (33, 17), (144, 260)] {
        let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let mut dst = vec![f32::NAN; rows * cols];
        super::transpose::transpose(&src, &mut dst, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(
                    dst[c * rows + r],
                    src[r * cols + c],
                    "{rows}×{cols} at ({r}, {c})"
                );
            }
        }
    }
}
