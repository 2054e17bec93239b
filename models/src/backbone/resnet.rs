//! ResNet-18/34/50 with torchvision's layer layout and parameter names (`conv1`, `bn1`,
//! `layer1..layer4`, `downsample`), so PyTorch checkpoints can be mapped onto it name by name.
//!
//! Two knobs exist for small experiments: a width multiplier (scales every channel count, so tests
//! can train a ResNet-18 with a few thousand parameters) and the stem (the ImageNet stem with its
//! 7×7/2 convolution and max pooling divides resolution by four, which leaves nothing of a 32 px
//! image; the small stem is the CIFAR variant, a 3×3/1 convolution without pooling).

use crate::layers::{batch_norm as bn, conv2d};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Depth of the network: the number and kind of residual blocks per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    #[serde(rename = "resnet18")]
    ResNet18,
    #[serde(rename = "resnet34")]
    ResNet34,
    #[serde(rename = "resnet50")]
    ResNet50,
}

impl Depth {
    /// Blocks per stage, as in the ResNet paper.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Depth::ResNet18 => [2, 2, 2, 2],
            Depth::ResNet34 | Depth::ResNet50 => [3, 4, 6, 3],
        }
    }

    /// Bottleneck blocks widen their output by four.
    pub fn expansion(self) -> usize {
        match self {
            Depth::ResNet50 => 4,
            _ => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Depth::ResNet18 => "resnet18",
            Depth::ResNet34 => "resnet34",
            Depth::ResNet50 => "resnet50",
        }
    }
}

impl std::str::FromStr for Depth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "resnet18" | "resnet-18" | "r18" => Ok(Depth::ResNet18),
            "resnet34" | "resnet-34" | "r34" => Ok(Depth::ResNet34),
            "resnet50" | "resnet-50" | "r50" => Ok(Depth::ResNet50),
            other => Err(format!(
                "unknown architecture '{other}' (expected resnet18, resnet34 or resnet50)"
            )),
        }
    }
}

impl std::fmt::Display for Depth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The first layers of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 7×7 stride-2 convolution and 3×3 stride-2 max pooling (torchvision, 224 px inputs).
    ImageNet,
    /// 3×3 stride-1 convolution, no pooling (CIFAR-style, for inputs of 32–96 px).
    Small,
}

impl std::str::FromStr for Stem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "imagenet" => Ok(Stem::ImageNet),
            "small" | "cifar" => Ok(Stem::Small),
            other => Err(format!(
                "unknown stem '{other}' (expected imagenet or small)"
            )),
        }
    }
}

/// Configuration of a [`ResNet`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub depth: Depth,
    /// Multiplies every channel count (64 at width 1.0 for the first stage).
    pub width: f32,
    pub stem: Stem,
    /// The last stage keeps its input's resolution and dilates its 3×3 convolutions by 2
    /// instead (torchvision's `replace_stride_with_dilation=[False, False, True]`): output
    /// stride 16 with the ImageNet stem, as DeepLabv3 uses. The weights are the same shapes,
    /// so a backbone pretrained without it loads into it. Absent in older cards: `false`.
    #[serde(default)]
    pub dilate_last_stage: bool,
}

impl ResNetConfig {
    pub fn new(depth: Depth) -> Self {
        Self {
            depth,
            width: 1.0,
            stem: Stem::ImageNet,
            dilate_last_stage: false,
        }
    }

    pub fn with_dilated_last_stage(mut self, dilate: bool) -> Self {
        self.dilate_last_stage = dilate;
        self
    }

    pub fn with_width(mut self, width: f32) -> Self {
        self.width = width;
        self
    }

    pub fn with_stem(mut self, stem: Stem) -> Self {
        self.stem = stem;
        self
    }

    /// Channels of the first stage (64 × width, at least 4).
    pub fn base_channels(&self) -> usize {
        ((64.0 * self.width).round() as usize).max(4)
    }

    /// Size of the pooled feature vector the backbone outputs.
    pub fn out_features(&self) -> usize {
        self.base_channels() * 8 * self.depth.expansion()
    }

    /// Channels of the three maps [`ResNet::forward_stages`] returns.
    pub fn stage_channels(&self) -> [usize; 3] {
        let out = self.base_channels() * self.depth.expansion();
        [out * 2, out * 4, out * 8]
    }

    /// Input pixels per cell of the three maps [`ResNet::forward_stages`] returns.
    pub fn stage_strides(&self) -> [usize; 3] {
        let [a, b, c] = match self.stem {
            Stem::ImageNet => [8, 16, 32],
            Stem::Small => [2, 4, 8],
        };
        [a, b, if self.dilate_last_stage { b } else { c }]
    }

    /// A one-line description for logs and model cards.
    pub fn describe(&self) -> String {
        format!(
            "{} (width {}, {} stem)",
            self.depth,
            self.width,
            match self.stem {
                Stem::ImageNet => "imagenet",
                Stem::Small => "small",
            }
        )
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let base = self.base_channels();
        let (conv1, maxpool) = match self.stem {
            Stem::ImageNet => (
                conv(3, base, 7, 2, 3, 1, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Small => (conv(3, base, 3, 1, 1, 1, device), None),
        };
        let blocks = self.depth.blocks();
        let expansion = self.depth.expansion();
        let mut in_channels = base;
        let mut stage = |index: usize| {
            let planes = base << index;
            let dilated = index == 3 && self.dilate_last_stage;
            let stride = if index == 0 || dilated { 1 } else { 2 };
            let layer = make_stage(
                in_channels,
                planes,
                blocks[index],
                stride,
                if dilated { 2 } else { 1 },
                self.depth,
                device,
            );
            in_channels = planes * expansion;
            layer
        };
        let layer1 = stage(0);
        let layer2 = stage(1);
        let layer3 = stage(2);
        let layer4 = stage(3);
        ResNet {
            conv1,
            bn1: batch_norm(base, device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

/// A residual network without its classifier: images in, pooled (or spatial) features out.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: Option<MaxPool2d>,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
    pub avgpool: AdaptiveAvgPool2d,
}

impl ResNet {
    /// Global-average-pooled features, `[batch, out_features]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let spatial = self.forward_spatial(images);
        self.avgpool.forward(spatial).flatten(1, 3)
    }

    /// The last stage's feature map, `[batch, out_features, h, w]`, for dense heads.
    pub fn forward_spatial(&self, images: Tensor<4>) -> Tensor<4> {
        let [_, _, c4] = self.forward_stages(images);
        c4
    }

    /// The outputs of stages 2, 3 and 4 (strides 8, 16 and 32 with the ImageNet stem), which
    /// detection and segmentation heads consume.
    pub fn forward_stages(&self, images: Tensor<4>) -> [Tensor<4>; 3] {
        let mut x = relu(bn(&self.bn1, conv2d(&self.conv1, images)));
        if let Some(pool) = &self.maxpool {
            x = pool.forward(x);
        }
        let c1 = run_stage(&self.layer1, x);
        let c2 = run_stage(&self.layer2, c1);
        let c3 = run_stage(&self.layer3, c2.clone());
        let c4 = run_stage(&self.layer4, c3.clone());
        [c2, c3, c4]
    }
}

fn run_stage(blocks: &[Block], mut x: Tensor<4>) -> Tensor<4> {
    for block in blocks {
        x = block.forward(x);
    }
    x
}

/// A residual block: basic (two 3×3 convolutions) for ResNet-18/34, bottleneck (1×1, 3×3, 1×1)
/// for ResNet-50, where `conv3`/`bn3` are present. The stride sits on the 3×3 convolution
/// (torchvision's "ResNet v1.5").
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
}

impl Block {
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = relu(bn(&self.bn1, conv2d(&self.conv1, input.clone())));
        x = bn(&self.bn2, conv2d(&self.conv2, x));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            x = bn(bn3, conv2d(conv3, relu(x)));
        }
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(input),
            None => input,
        };
        relu(x + identity)
    }
}

/// The 1×1 projection of the shortcut when a block changes resolution or width
/// (torchvision names it `downsample.0` / `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl Downsample {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        bn(&self.bn, conv2d(&self.conv, x))
    }
}

fn make_stage(
    in_channels: usize,
    planes: usize,
    count: usize,
    stride: usize,
    dilation: usize,
    depth: Depth,
    device: &Device,
) -> Vec<Block> {
    let expansion = depth.expansion();
    let mut blocks = Vec::with_capacity(count);
    let mut in_ch = in_channels;
    for i in 0..count {
        let s = if i == 0 { stride } else { 1 };
        // As torchvision: a dilated stage's first block keeps dilation 1, the rest dilate.
        let d = if i == 0 { 1 } else { dilation };
        let out = planes * expansion;
        let downsample = (s != 1 || in_ch != out).then(|| Downsample {
            conv: conv(in_ch, out, 1, s, 0, 1, device),
            bn: batch_norm(out, device),
        });
        let block = if expansion == 1 {
            Block {
                conv1: conv(in_ch, planes, 3, s, d, d, device),
                bn1: batch_norm(planes, device),
                conv2: conv(planes, planes, 3, 1, d, d, device),
                bn2: batch_norm(planes, device),
                conv3: None,
                bn3: None,
                downsample,
            }
        } else {
            Block {
                conv1: conv(in_ch, planes, 1, 1, 0, 1, device),
                bn1: batch_norm(planes, device),
                conv2: conv(planes, planes, 3, s, d, d, device),
                bn2: batch_norm(planes, device),
                conv3: Some(conv(planes, out, 1, 1, 0, 1, device)),
                bn3: Some(batch_norm(out, device)),
                downsample,
            }
        };
        blocks.push(block);
        in_ch = out;
    }
    blocks
}

/// A bias-free convolution with torchvision's initialisation (Kaiming normal, fan-out, ReLU gain).
fn conv(
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// BatchNorm with PyTorch's defaults (momentum 0.1, eps 1e-5, γ = 1, β = 0).
fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn output_sizes_follow_depth_and_width() {
        let device = Device::flex();
        for (depth, expected) in [
            (Depth::ResNet18, 64),
            (Depth::ResNet34, 64),
            (Depth::ResNet50, 256),
        ] {
            let config = ResNetConfig::new(depth)
                .with_width(0.125)
                .with_stem(Stem::Small);
            assert_eq!(config.out_features(), expected);
            let net = config.init(&device);
            let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(net.forward(x.clone()).dims(), [2, expected]);
            assert_eq!(net.forward_spatial(x).dims(), [2, expected, 2, 2]);
        }
    }

    #[test]
    fn imagenet_stem_divides_resolution_by_32() {
        let device = Device::flex();
        let net = ResNetConfig::new(Depth::ResNet18)
            .with_width(0.0625)
            .init(&device);
        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let config = ResNetConfig::new(Depth::ResNet18).with_width(0.0625);
        assert_eq!(config.stage_strides(), [8, 16, 32]);
        assert_eq!(config.stage_channels(), [8, 16, 32]);
        let [c2, c3, c4] = net.forward_stages(x);
        assert_eq!(c2.dims()[1..], [8, 8, 8]);
        assert_eq!(c3.dims()[1..], [16, 4, 4]);
        assert_eq!(c4.dims()[2..], [2, 2]);
    }

    #[test]
    fn a_dilated_last_stage_halves_the_output_stride_with_the_same_weights() {
        let device = Device::flex();
        for depth in [Depth::ResNet18, Depth::ResNet50] {
            let plain = ResNetConfig::new(depth).with_width(0.0625);
            let dilated = plain.with_dilated_last_stage(true);
            assert_eq!(dilated.stage_strides(), [8, 16, 16]);
            let net = dilated.init(&device);
            assert_eq!(net.num_params(), plain.init(&device).num_params());
            let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
            let [_, c3, c4] = net.forward_stages(x);
            assert_eq!(c3.dims()[2..], [4, 4]);
            assert_eq!(c4.dims()[2..], [4, 4], "{depth}");
        }
        // Cards written before the field existed still read, undilated.
        let old: ResNetConfig =
            serde_json::from_str(r#"{"depth":"resnet18","width":1.0,"stem":"imagenet"}"#).unwrap();
        assert!(!old.dilate_last_stage);
    }

    #[test]
    fn full_width_resnet50_has_torchvision_parameter_count() {
        // torchvision's resnet50 has 25,557,032 parameters, less its 2048×1000 + 1000
        // classifier; burn's count also includes the BatchNorm running mean and variance
        // (2 × 26,560 channels), which torchvision keeps as buffers.
        let net = ResNetConfig::new(Depth::ResNet50).init(&Device::flex());
        assert_eq!(net.num_params(), 25_557_032 - 2_049_000 + 2 * 26_560);
        // resnet18: 11,689,512 less a 512×1000 + 1000 classifier, plus 2 × 4,800 BN buffers.
        let net = ResNetConfig::new(Depth::ResNet18).init(&Device::flex());
        assert_eq!(net.num_params(), 11_689_512 - 513_000 + 2 * 4_800);
    }
}
