//! What one convolution call computes with: the kernel taps that read at least one input
//! pixel, the weight restricted to them, and the sizes of a group of images.

use std::borrow::Cow;

use super::Conv2dShape;
use super::patches::{Reads, valid_outputs};

/// What one call computes with: the live kernel taps and the weight restricted to them.
pub(super) struct Plan<'a> {
    pub(super) shape: &'a Conv2dShape,
    /// Kernel offsets `[ky, kx]` that read at least one input pixel, in kernel order.
    pub(super) taps: Vec<[usize; 2]>,
    /// `[out_channels, in_channels · taps]`: the weight itself when every tap is live.
    pub(super) weight: Cow<'a, [f32]>,
    /// Where each live tap reads.
    pub(super) reads: Reads,
}

/// A group of whole images as the products see it.
pub(super) struct Group {
    pub(super) images: usize,
    /// Output pixels per image and channel.
    pub(super) plane: usize,
    /// Output pixels of the group: the products' column count.
    pub(super) columns: usize,
    /// Rows of the patch matrix: input channels × live taps.
    pub(super) patch_len: usize,
    /// Output channels.
    pub(super) channels: usize,
}

impl<'a> Plan<'a> {
    pub(super) fn new(shape: &'a Conv2dShape, w: &'a [f32]) -> Self {
        let [out_h, out_w] = shape.out_size();
        let live = |axis: usize, k: usize, out_len: usize| {
            let offset = (k * shape.dilation[axis]) as isize - shape.padding[axis].0 as isize;
            let (begin, end) =
                valid_outputs(out_len, shape.stride[axis], offset, shape.in_size[axis]);
            begin < end
        };
        let [kh, kw] = shape.kernel;
        let taps: Vec<[usize; 2]> = (0..kh)
            .filter(|&ky| live(0, ky, out_h))
            .flat_map(|ky| {
                (0..kw)
                    .filter(|&kx| live(1, kx, out_w))
                    .map(move |kx| [ky, kx])
            })
            .collect();
        let weight = if taps.len() == kh * kw {
            Cow::Borrowed(w)
        } else {
            let area = kh * kw;
            let rows = shape.out_channels * shape.in_channels;
            Cow::Owned(
                (0..rows)
                    .flat_map(|row| {
                        taps.iter()
                            .map(move |&[ky, kx]| w[row * area + ky * kw + kx])
                    })
                    .collect(),
            )
        };
        Self {
            shape,
            reads: Reads::new(shape, &taps),
            taps,
            weight,
        }
    }

    /// Rows of the patch matrix: input channels × live taps.
    pub(super) fn patch_len(&self) -> usize {
        self.shape.in_channels * self.taps.len()
    }

    /// The sizes of a group of whole images whose input holds `x_len` values.
    pub(super) fn group(&self, x_len: usize) -> Group {
        let shape = self.shape;
        let images = x_len / (shape.in_channels * shape.in_plane());
        let plane = shape.out_plane();
        Group {
            images,
            plane,
            columns: images * plane,
            patch_len: self.patch_len(),
            channels: shape.out_channels,
        }
    }

    /// The weight gradient over every tap (zero for the dead ones), from the live taps' one.
    pub(super) fn full_weight_grad(&self, live: Vec<f32>) -> Vec<f32> {
        let [kh, kw] = self.shape.kernel;
        if self.taps.len() == kh * kw {
            return live;
        }
        let mut full = vec![0.0; self.shape.weight_len()];
        for (row, values) in live.chunks(self.taps.len().max(1)).enumerate() {
            for (&[ky, kx], &v) in self.taps.iter().zip(values) {
                full[row * kh * kw + ky * kw + kx] = v;
            }
        }
        full
    }
}
