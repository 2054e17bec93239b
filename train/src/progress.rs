//! Progress reporting: a bar with ETA and images/s on a terminal, plain log lines otherwise
//! (CI logs, `nohup`, files), and the metrics log every run keeps.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports training progress to a person.
pub struct Progress {
    bar: Option<ProgressBar>,
    log_every: usize,
    end: usize,
    last_log: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, log lines every `log_every` steps otherwise.
    pub fn new(start: usize, end: usize, log_every: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(end as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps, ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar.set_position(start as u64);
            bar.reset_eta();
            bar
        });
        Self {
            bar,
            log_every: log_every.max(1),
            end,
            last_log: Instant::now(),
        }
    }

    /// Reports that `step` (1-based count of finished steps) is done.
    pub fn step(&mut self, step: usize, summary: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(step as u64);
                bar.set_message(summary.to_string());
            }
            None => {
                if step.is_multiple_of(self.log_every)
                    || step == self.end
                    || self.last_log.elapsed() > Duration::from_secs(60)
                {
                    eprintln!("step {step}/{}: {summary}", self.end);
                    self.last_log = Instant::now();
                }
            }
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The run's metrics, one JSON object per line (`metrics.jsonl`).
pub struct MetricsLog {
    file: File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens the log: a new one, or, when resuming from `resume_step`, the existing one without
    /// the entries written after that step (by the interrupted process, past its last
    /// checkpoint), so the log reads as one uninterrupted run.
    pub fn open(path: &Path, resume_step: Option<usize>) -> std::io::Result<Self> {
        if resume_step.is_none() && path.exists() {
            std::fs::remove_file(path)?;
        }
        if let Some(step) = resume_step
            && path.exists()
        {
            let kept: Vec<String> = BufReader::new(File::open(path)?)
                .lines()
                .map_while(Result::ok)
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s as usize <= step)
                })
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            crate::checkpoint::atomic_write(path, text.as_bytes())?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, entry: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.file, "{entry}")?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
