//! A screenshot of the demo page answering one image, as a person would see it: starts `serve`
//! on `--models`, opens `/` in headless Chromium, picks the model, chooses the image and saves
//! the page as a PNG. The serving chapter's screenshot (docs/serving.md) is made with it:
//!
//! ```text
//! cargo build --release -p exemplar-serve
//! cargo run --release -p exemplar-tests --example page-screenshot -- \
//!   --models runs/pipeline-…/models --model detection \
//!   --image serve/assets/samples/scene.png --out docs/demo-page.png
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use exemplar_tests::Server;
use exemplar_tests::browser::Page;

#[derive(Parser)]
#[command(about = "Screenshot the demo page answering one image")]
struct Args {
    /// The models directory to serve (one subdirectory per exported model).
    #[arg(long)]
    models: PathBuf,
    /// The model to pick on the page.
    #[arg(long)]
    model: String,
    /// The image to choose.
    #[arg(long)]
    image: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.models.is_dir() {
        bail!("--models {}: not a directory", args.models.display());
    }
    if !args.image.is_file() {
        bail!("--image {}: no such file", args.image.display());
    }
    let server = Server::start(&args.models, &[]);
    let page = Page::open(&format!("http://{}/", server.addr));
    page.wait_for("document.body.dataset.ready");
    page.set_value("#model", &args.model, "change");
    page.choose_file("#file", &args.image);
    page.wait_for("document.getElementById('canvas').getAttribute('aria-label') !== 'No image yet' || !document.getElementById('error').hidden");
    std::fs::write(&args.out, page.screenshot())
        .with_context(|| format!("writing {}", args.out.display()))?;
    let problems = page.take_problems();
    if !problems.is_empty() {
        bail!("the page logged problems: {problems:?}");
    }
    println!("{}", args.out.display());
    Ok(())
}
