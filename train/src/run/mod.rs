//! What pretraining and fine-tuning runs share: the run directory rules, the optimizer, the
//! learning-rate schedules and the log window. Checkpoints are in `crate::checkpoint`, the progress line and `metrics.jsonl` in
//! `crate::progress`, and reading samples with the bad-image policy in `exemplar_data::loader`.

pub mod dir;
pub mod error;
pub mod optim;
pub mod resume;
pub mod window;

pub use error::{RunError, io_error};
pub use optim::{cosine, sgd, warmup_cosine};
pub use window::Window;
