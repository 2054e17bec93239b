//! `train pretrain`.

use anyhow::Result;
use clap::Args;
use exemplar_train::config::{self, PretrainFlags};
use exemplar_train::pretrain::pretrain;

use super::RunArgs;

#[derive(Debug, Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    flags: PretrainFlags,
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let flags = &args.flags;
    let (config, out) = args.run.settle(
        "pretraining",
        flags.training_flags_given(),
        |saved| {
            let mut config = config::load_saved(saved)?;
            flags.apply_runtime(&mut config);
            config.validate()?;
            Ok(config)
        },
        |file| Ok(config::resolve(file, flags)?),
        |config| config.method.name(),
    )?;
    let summary = pretrain(&config, &out, args.run.resume)?;
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
