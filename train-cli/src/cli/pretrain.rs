//! `train pretrain`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use exemplar_train::config::{self, PretrainConfig, PretrainFlags};
use exemplar_train::pretrain::pretrain;
use exemplar_train::run::dir;

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// TOML file with any of the settings below (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory: config, metrics, checkpoints and the trained backbone go here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with its saved configuration.
    #[arg(long, requires = "out")]
    resume: bool,
    #[command(flatten)]
    flags: PretrainFlags,
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let (config, out) = if args.resume {
        let out = args.out.expect("clap requires --out with --resume");
        (resumed_config(&args.config, &out, &args.flags)?, out)
    } else {
        let config = config::resolve(args.config.as_deref(), &args.flags)?;
        let out = args
            .out
            .unwrap_or_else(|| dir::default_run_dir(config.method.name()));
        dir::check_new(&out)?;
        (config, out)
    };
    let summary = pretrain(&config, &out, args.resume)?;
    let knn = summary
        .knn
        .as_ref()
        .map(|k| format!(", kNN top-1 {:.2}% (k={})", k.top1 * 100.0, k.k))
        .unwrap_or_else(|| {
            if config.knn_bank_size == 0 {
                ", kNN monitor off".into()
            } else {
                ", no validation split for kNN".into()
            }
        });
    println!(
        "{}: {} steps, loss {} (first log interval) -> {} (last){}, {:.1} img/s; backbone in {}",
        config.method,
        summary.steps,
        summary.first_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        knn,
        summary.images_per_second,
        out.display()
    );
    if summary.skipped_images > 0 {
        eprintln!(
            "warning: {} unreadable images were skipped",
            summary.skipped_images
        );
    }
    Ok(())
}

/// The saved configuration of the run in `out`, with only the runtime flags applied.
fn resumed_config(
    file: &Option<PathBuf>,
    out: &Path,
    flags: &PretrainFlags,
) -> Result<PretrainConfig> {
    let given = flags
        .training_flags_given()
        .into_iter()
        .map(String::from)
        .collect();
    let saved = dir::resume_config(out, "pretraining", file.is_some(), given)?;
    let mut config = config::load_saved(&saved)?;
    flags.apply_runtime(&mut config);
    config.validate()?;
    Ok(config)
}
