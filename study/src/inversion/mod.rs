//! Feature inversion (`train analyze invert`): the image a backbone's features of a picture
//! describe, found by optimising an image until its features match. The paper (its Figure 2)
//! shows that contrastive backbones keep the whole picture in their last features while
//! supervised ones lose large regions; comparing inversions of the same picture through
//! different backbones shows what each kept.
//!
//! The image is parameterised by a Deep Image Prior generator, as in the paper, or by its
//! pixels with a total-variation penalty ([`prior`]). The loss is the squared distance between
//! the features, relative to the target's squared norm (Mahendran & Vedaldi's normalisation), so
//! it reads the same for every backbone: 1 is as far as an all-zero feature. [`figure`] puts the
//! original and its reconstructions side by side, as a PNG.

pub mod figure;
pub mod prior;
pub mod score;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use exemplar_inference::image::decode_bytes;
use exemplar_inference::{Image, ModelCard, Normalization};
use exemplar_models::card::{BACKBONE_CARD, load_backbone};
use exemplar_models::network::NETWORK_CONFIG;
use exemplar_models::{Network, ResNet};

use self::prior::{Canvas, Generator, total_variation};

/// How the image is parameterised and regularised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// A Deep Image Prior generator, optimised per image (the paper's method).
    DeepImagePrior,
    /// The pixels, with a total-variation penalty.
    TotalVariation,
}

/// Which features are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Features {
    /// The last stage's feature map (ResNet's res5, before pooling).
    Spatial,
    /// The globally pooled vector the backbone outputs.
    Pooled,
}

/// How one inversion runs.
#[derive(Debug, Clone, Copy)]
pub struct InvertOptions {
    pub prior: Prior,
    pub features: Features,
    /// Adam steps.
    pub steps: usize,
    pub lr: f64,
    /// Weight of the total-variation penalty (total-variation prior only).
    pub tv_weight: f64,
    /// Seeds the generator's noise and weights, or the canvas.
    pub seed: u64,
}

impl Default for InvertOptions {
    fn default() -> Self {
        Self {
            prior: Prior::DeepImagePrior,
            features: Features::Spatial,
            steps: 400,
            lr: 0.01,
            tv_weight: 1.0,
            seed: 0,
        }
    }
}

/// What an inversion found.
#[derive(Debug, Clone)]
pub struct Inversion {
    /// The reconstruction, at the backbone's input size.
    pub image: Image,
    /// The relative feature distance before the first step and after the last.
    pub initial_loss: f32,
    pub final_loss: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum InvertError {
    #[error(
        "{0} is neither a pretraining run (backbone.json) nor a fine-tuning run (network.json)"
    )]
    NotARun(PathBuf),
    #[error(transparent)]
    Backbone(#[from] exemplar_models::card::CardError),
    #[error(transparent)]
    Network(#[from] exemplar_models::network::NetworkError),
    #[error(transparent)]
    Card(#[from] exemplar_inference::CardError),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("--steps must be at least 1")]
    NoSteps,
}

/// A backbone with what feeding it needs: its input size and normalisation.
pub struct Backbone {
    pub network: ResNet,
    pub size: [usize; 2],
    pub normalization: Normalization,
    /// How the run names it (architecture and method, or task).
    pub description: String,
}

impl Backbone {
    /// The backbone of `run`: a pretraining run, or the backbone inside a fine-tuned model, on
    /// the plain `device`.
    pub fn load(run: &Path, device: &Device) -> Result<Self, InvertError> {
        if run.join(BACKBONE_CARD).is_file() {
            let (network, card) = load_backbone(run, device)?;
            Ok(Self {
                network: network.valid(),
                size: [card.image_size, card.image_size],
                normalization: card.normalization,
                description: format!("{} ({})", card.backbone.describe(), card.method),
            })
        } else if run.join(NETWORK_CONFIG).is_file() {
            let card = ModelCard::read(&run.join("model.json"))?;
            let (network, config) = Network::load(run, device)?;
            Ok(Self {
                network: network.into_backbone(),
                size: [card.input.height, card.input.width],
                normalization: card.input.normalization,
                description: format!("{} ({} model)", config.backbone().describe(), config.name()),
            })
        } else {
            Err(InvertError::NotARun(run.to_path_buf()))
        }
    }

    /// Reads `path` (PNG or JPEG) and resizes it to the backbone's input size.
    pub fn read_image(&self, path: &Path) -> Result<Image, InvertError> {
        let bytes = std::fs::read(path).map_err(|source| InvertError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let image = decode_bytes(&bytes).map_err(|reason| InvertError::Image {
            path: path.to_path_buf(),
            reason,
        })?;
        let [height, width] = self.size;
        Ok(image.resize(width, height))
    }
}

/// `[1, 3, h, w]` network input for a `[0, 1]` image tensor.
fn normalize(image: Tensor<4>, normalization: &Normalization) -> Tensor<4> {
    let device = image.device();
    let column =
        |v: [f32; 3]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 3, 1, 1]), &device);
    (image - column(normalization.mean)) / column(normalization.std)
}

fn features(backbone: &ResNet, input: Tensor<4>, which: Features) -> Tensor<2> {
    match which {
        Features::Spatial => backbone.forward_spatial(input).flatten(1, 3),
        Features::Pooled => backbone.forward(input),
    }
}

/// The image as a `[1, 3, h, w]` tensor.
fn to_tensor(image: &Image, device: &Device) -> Tensor<4> {
    let mut chw = Vec::with_capacity(image.data.len());
    image.write_chw_normalized([0.0; 3], [1.0; 3], &mut chw);
    Tensor::from_data(
        TensorData::new(chw, [1, 3, image.height, image.width]),
        device,
    )
}

fn to_image(tensor: Tensor<4>) -> Image {
    let [_, _, height, width] = tensor.dims();
    let chw: Vec<f32> = tensor.into_data().iter::<f32>().collect();
    let plane = height * width;
    let mut image = Image::new(width, height);
    for (i, v) in image.data.iter_mut().enumerate() {
        let (pixel, channel) = (i / 3, i % 3);
        *v = chw[channel * plane + pixel];
    }
    image
}

/// Inverts `backbone`'s features of `target` (at the backbone's input size) on the plain
/// `device`: the backbone is frozen (BatchNorm on its running statistics) and only the image's
/// parameterisation is optimised, with Adam.
pub fn invert(
    backbone: &Backbone,
    target: &Image,
    options: &InvertOptions,
    device: &Device,
) -> Result<Inversion, InvertError> {
    if options.steps == 0 {
        return Err(InvertError::NoSteps);
    }
    let autodiff = device.clone().autodiff();
    autodiff.seed(options.seed);
    let network = backbone.network.clone().to_device(&autodiff).freeze();
    let wanted = features(
        &network,
        normalize(to_tensor(target, &autodiff), &backbone.normalization),
        options.features,
    )
    .detach();
    let scale = wanted
        .clone()
        .powi_scalar(2)
        .sum()
        .into_scalar::<f32>()
        .max(1e-12);
    let loss_of = |image: Tensor<4>| -> Tensor<1> {
        let got = features(
            &network,
            normalize(image, &backbone.normalization),
            options.features,
        );
        (got - wanted.clone())
            .powi_scalar(2)
            .sum()
            .div_scalar(scale)
    };
    let size = [target.height, target.width];
    let mut optim = AdamConfig::new().init();
    let mut initial_loss = f32::NAN;
    let image = match options.prior {
        Prior::DeepImagePrior => {
            let mut generator = Generator::new(size, &autodiff);
            for step in 0..options.steps {
                let loss = loss_of(generator.image());
                if step == 0 {
                    initial_loss = loss.clone().into_scalar::<f32>();
                }
                let grads = GradientsParams::from_grads(loss.backward(), &generator);
                generator = optim.step(options.lr, generator, grads);
            }
            generator.image()
        }
        Prior::TotalVariation => {
            let mut canvas = Canvas::new(size, &autodiff);
            for step in 0..options.steps {
                let image = canvas.image();
                let feature_loss = loss_of(image.clone());
                if step == 0 {
                    initial_loss = feature_loss.clone().into_scalar::<f32>();
                }
                let loss = feature_loss + total_variation(image).mul_scalar(options.tv_weight);
                let grads = GradientsParams::from_grads(loss.backward(), &canvas);
                canvas = optim.step(options.lr, canvas, grads);
            }
            canvas.image()
        }
    }
    .detach();
    // The feature distance of the image returned, after the last step.
    let final_loss = loss_of(image.clone()).into_scalar::<f32>();
    Ok(Inversion {
        image: to_image(image),
        initial_loss,
        final_loss,
    })
}

/// Mean squared difference of two images of the same size, per channel value in `[0, 1]`.
pub fn pixel_mse(a: &Image, b: &Image) -> f32 {
    let n = a.data.len().max(1) as f32;
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        / n
}

/// Peak signal-to-noise ratio in dB for a mean squared error of pixels in `[0, 1]`.
pub fn psnr(mse: f32) -> f32 {
    10.0 * (1.0 / mse.max(1e-12)).log10()
}
