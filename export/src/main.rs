//! `export`: not built yet. The workspace reserves the crate so the layout is stable; the
//! export-and-serve issue fills it in.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("error: `export` is not implemented yet in this version of exemplar");
    ExitCode::FAILURE
}
