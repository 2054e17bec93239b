//! `train finetune`.

use anyhow::Result;
use clap::Args;
use exemplar_train::finetune::config::{FinetuneConfig, FinetuneFlags};
use exemplar_train::finetune::{self, FinetuneSummary, TaskKind};

use super::RunArgs;

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    flags: FinetuneFlags,
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    let flags = &args.flags;
    let (config, out) = args.run.settle(
        "fine-tuning",
        flags.training_flags_given(),
        |saved| {
            let mut config = FinetuneConfig::load(saved)?;
            flags.apply_runtime(&mut config);
            Ok(config)
        },
        |file| Ok(flags.resolve(file)?),
        |config| config.task.name(),
    )?;
    let task = config.task;
    let resume = args.run.resume;
    let summary =
        exemplar_train::with_task!(task, T => finetune::finetune::<T>(config, &out, resume))?;
    print_finetune_summary(task, &summary);
    Ok(())
}

fn print_finetune_summary(task: TaskKind, summary: &FinetuneSummary) {
    let Some((metric, after)) = &summary.after else {
        println!(
            "{task}: {} in {}",
            summary.summary,
            summary.run_dir.display()
        );
        return;
    };
    let before = summary
        .before
        .as_ref()
        .map_or(String::new(), |(_, v)| format!("{v:.2} -> "));
    println!(
        "{task}: {} steps, loss {} -> {}, {metric} {before}{after:.2}, {:.1} img/s; model in {}",
        summary.steps,
        summary.first_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.images_per_second,
        summary.run_dir.display()
    );
    println!("  {}", summary.summary);
}
