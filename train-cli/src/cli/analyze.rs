//! `train analyze`: the paper's analyses on runs you already have.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use exemplar_models::store::atomic_write;
use exemplar_study::inversion::figure;
use exemplar_study::inversion::{
    Backbone, Features, InvertOptions, Prior, invert, pixel_mse, psnr,
};

#[derive(Debug, Subcommand)]
pub enum AnalyzeCommand {
    /// Reconstruct an image from each run's backbone features (feature inversion, the paper's
    /// Figure 2) and write the original and the reconstructions side by side as a PNG.
    Invert(InvertArgs),
}

#[derive(Debug, Args)]
pub struct InvertArgs {
    /// A pretraining run or a fine-tuning run (its backbone is inverted); repeat to compare
    /// backbones on the same image. They must take the same input size.
    #[arg(long, value_name = "DIR", required = true)]
    run: Vec<PathBuf>,
    /// The picture to reconstruct (PNG or JPEG); it is resized to the backbones' input size.
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// Where the PNG goes.
    #[arg(long, value_name = "FILE", default_value = "inversion.png")]
    out: PathBuf,
    /// How the image is parameterised: a Deep Image Prior generator (as the paper) or the pixels
    /// with a total-variation penalty.
    #[arg(long, value_enum, default_value_t = Prior::DeepImagePrior)]
    prior: Prior,
    /// Which features are matched: the last stage's map (res5) or the pooled vector.
    #[arg(long, value_enum, default_value_t = Features::Spatial)]
    features: Features,
    /// Adam steps per backbone.
    #[arg(long, default_value_t = InvertOptions::default().steps)]
    steps: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = InvertOptions::default().lr)]
    lr: f64,
    /// Weight of the total-variation penalty (with --prior total-variation).
    #[arg(long, default_value_t = InvertOptions::default().tv_weight)]
    tv_weight: f64,
    /// Seed of the generator's noise and weights (the same for every run, so they start alike).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(command: AnalyzeCommand) -> Result<()> {
    match command {
        AnalyzeCommand::Invert(args) => run_invert(args),
    }
}

fn run_invert(args: InvertArgs) -> Result<()> {
    let options = InvertOptions {
        prior: args.prior,
        features: args.features,
        steps: args.steps,
        lr: args.lr,
        tv_weight: args.tv_weight,
        seed: args.seed,
    };
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", args.lr);
    }
    if !(args.tv_weight >= 0.0 && args.tv_weight.is_finite()) {
        bail!(
            "--tv-weight must be zero or positive, got {}",
            args.tv_weight
        );
    }
    let device = burn::tensor::Device::flex();
    let backbones = args
        .run
        .iter()
        .map(|run| Backbone::load(run, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let size = backbones[0].size;
    if let Some(other) = backbones.iter().position(|b| b.size != size) {
        bail!(
            "{} takes {:?} images and {} takes {:?}: compare backbones of one input size",
            args.run[0].display(),
            size,
            args.run[other].display(),
            backbones[other].size
        );
    }
    let original = backbones[0].read_image(&args.image)?;
    let mut columns = vec!["original".to_string()];
    let mut row = vec![original.clone()];
    for (run, backbone) in args.run.iter().zip(&backbones) {
        let inversion = invert(backbone, &original, &options, &device)
            .with_context(|| format!("inverting {}", run.display()))?;
        let mse = pixel_mse(&inversion.image, &original);
        println!(
            "{}: {}; feature distance {:.4} -> {:.4}; pixel MSE {mse:.4} ({:.1} dB PSNR)",
            run.display(),
            backbone.description,
            inversion.initial_loss,
            inversion.final_loss,
            psnr(mse)
        );
        let name = run.file_name().map_or_else(
            || run.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        columns.push(name);
        row.push(inversion.image);
    }
    let picture = figure::grid(&columns, &[row]);
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding the PNG")?;
    atomic_write(&args.out, &png).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
