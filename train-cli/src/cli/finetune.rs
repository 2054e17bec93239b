//! `train finetune`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use exemplar_train::finetune::config::{FinetuneConfig, FinetuneFlags};
use exemplar_train::finetune::{self, FinetuneSummary, TaskKind};
use exemplar_train::run::dir;

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// TOML file with any of the settings below, `task` included (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory: config, metrics, checkpoints, the model and its card go here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with its saved configuration.
    #[arg(long, requires = "out")]
    resume: bool,
    #[command(flatten)]
    flags: FinetuneFlags,
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    let (config, out) = if args.resume {
        let out = args.out.expect("clap requires --out with --resume");
        let given = args
            .flags
            .training_flags_given()
            .into_iter()
            .map(String::from)
            .collect();
        let saved = dir::resume_config(&out, "fine-tuning", args.config.is_some(), given)?;
        let mut config = FinetuneConfig::load(&saved)?;
        args.flags.apply_runtime(&mut config);
        (config, out)
    } else {
        let config = args.flags.resolve(args.config.as_deref())?;
        let out = args
            .out
            .unwrap_or_else(|| dir::default_run_dir(config.task.name()));
        dir::check_new(&out)?;
        (config, out)
    };
    let task = config.task;
    let summary =
        exemplar_train::with_task!(task, T => finetune::finetune::<T>(config, &out, args.resume))?;
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
