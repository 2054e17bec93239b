//! `train`: pretrain backbones with Exemplar-v2 and its baselines, fine-tune them on the transfer
//! tasks, and evaluate both. Each subcommand lives in its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    exemplar_train::allocator::keep_freed_memory();
    if let Err(err) = exemplar_kernels::join_thread_pool() {
        eprintln!("warning: training threads: {err}");
    }
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            // Our error messages already quote their source ("PATH: reason"); print a cause only
            // when it adds something to the line above it.
            let mut shown = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                shown = text;
            }
            ExitCode::FAILURE
        }
    }
}
