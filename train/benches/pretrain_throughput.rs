//! Pretraining throughput on this machine's CPU (burn's flex backend): images per second of
//! full training steps for ResNet-18 and ResNet-50 at several batch sizes, Exemplar-v2 beside
//! the supervised baseline, plus the data loader's rate (to show the trainer is not starved).
//!
//! `cargo bench -p exemplar-train --bench pretrain_throughput` writes
//! `results/pretrain-throughput-cpu.md`. Figures from one run on one machine are comparable with
//! each other (ratios); absolute numbers move with the machine and its load.
//! `EXEMPLAR_BENCH_QUICK=1` measures fewer configurations (for a smoke test).
//!
//! With `--device`, it measures one configuration on that device instead and prints it as one
//! JSON line, the form scripts/gpu-bench.sh compares with PyTorch's
//! (scripts/gpu-bench/reference.py `train`):
//!
//! ```text
//! pretrain_throughput --device cuda --arch resnet50 --batch 256 --image-size 224 \
//!     --method exemplar-v2 --steps 20
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use exemplar_data::Dataset;
use exemplar_data::synthetic::{Stream, SyntheticObjects};
use exemplar_models::{Depth, Stem};
use exemplar_train::config::{Method, PretrainConfig};
use exemplar_train::pretrain::{Learner, optimizer, train_step};

const IMAGE_SIZE: usize = 64;

struct Row {
    arch: Depth,
    method: Method,
    batch: usize,
    images_per_second: f64,
    step_seconds: f64,
}

fn config(arch: Depth, method: Method, batch: usize) -> PretrainConfig {
    let mut config = PretrainConfig::defaults(method);
    config.arch = arch;
    config.width = 1.0;
    config.stem = Stem::ImageNet;
    config.image_size = IMAGE_SIZE;
    config.batch_size = batch;
    config.queue_size = 4096;
    config
}

/// Times `measured` training steps on `device` (plain, not autodiff) after `warmup` untimed ones
/// (kernel compilation and autotuning happen there), cycling two batches made beforehand: their
/// content does not change the speed, and only the training step is timed. Returns the seconds
/// and the last loss.
fn time_steps(
    config: &PretrainConfig,
    data: &dyn Dataset,
    device: &burn::tensor::Device,
    warmup: usize,
    measured: usize,
) -> Result<(f64, f64), String> {
    let train_device = device.clone().autodiff();
    let plan = config.batch_plan();
    let batches = [0, 1].map(|step| {
        plan.build(data, step)
            .map_err(|e| format!("building a batch: {e}"))
    });
    let [first, second] = batches;
    let batches = [first?, second?];
    let mut learner = Learner::new(config, data.class_names().len(), &train_device);
    let mut optim = optimizer(config);
    let sync = || device.sync().map_err(|e| format!("{e:?}"));
    let mut loss = f64::NAN;
    let mut started = Instant::now();
    for step in 0..warmup + measured {
        if step == warmup {
            sync()?;
            started = Instant::now();
        }
        let batch = batches[step % 2].clone();
        (learner, loss, _) = train_step(learner, &mut optim, batch, config, 0.01, &train_device);
    }
    sync()?;
    Ok((started.elapsed().as_secs_f64(), loss))
}

/// One row of the CPU report.
fn measure(config: &PretrainConfig, data: &dyn Dataset, warmup: usize, measured: usize) -> Row {
    let device = burn::tensor::Device::flex();
    device.seed(0);
    let (elapsed, _) =
        time_steps(config, data, &device, warmup, measured).expect("synthetic data never fails");
    Row {
        arch: config.arch,
        method: config.method,
        batch: config.batch_size,
        images_per_second: (measured * config.batch_size) as f64 / elapsed,
        step_seconds: elapsed / measured as f64,
    }
}

fn loader_rate(data: Arc<dyn Dataset>) -> f64 {
    let config = config(Depth::ResNet18, Method::ExemplarV2, 64);
    let steps = 20;
    let start = Instant::now();
    let count = config
        .batch_plan()
        .spawn(data, 0, steps, 2)
        .filter(|b| b.is_ok())
        .count();
    (count * config.batch_size) as f64 / start.elapsed().as_secs_f64()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{model}, {cores} cores available, {}",
        std::env::consts::ARCH
    )
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Precision {
    F32,
    Bf16,
    F16,
}

impl Precision {
    fn dtype(self) -> burn::tensor::FloatDType {
        match self {
            Precision::F32 => burn::tensor::FloatDType::F32,
            Precision::Bf16 => burn::tensor::FloatDType::BF16,
            Precision::F16 => burn::tensor::FloatDType::F16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

/// One configuration on one device (the GPU benchmark's form).
#[derive(Parser, Debug)]
struct DeviceRun {
    /// cpu, wgpu, vulkan or cuda[:N] (GPU devices need the matching cargo feature).
    #[arg(long)]
    device: String,
    #[arg(long, default_value = "resnet50")]
    arch: Depth,
    /// Channel width multiplier (64 × width in the first stage).
    #[arg(long, default_value_t = 1.0)]
    width: f32,
    /// imagenet (7×7/2 convolution and max pooling) or small (3×3/1, no pooling).
    #[arg(long, default_value = "imagenet")]
    stem: Stem,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    #[arg(long, value_enum, default_value = "exemplar-v2")]
    method: Method,
    #[arg(long, default_value_t = 65536)]
    queue: usize,
    /// Untimed steps first (kernel compilation and autotuning happen here).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// The device's default float type: f32, or bf16 / f16 for every tensor (burn 0.22 has no
    /// autocast: weights, gradients and optimiser state too).
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
    /// off: burn's own convolution and batch norm instead of exemplar-kernels' (for comparison).
    #[arg(long, value_enum, default_value = "on")]
    kernels: Switch,
    /// `cargo bench` passes it; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One configuration on `run.device`, printed as one JSON line.
fn measure_on_device(run: &DeviceRun) -> Result<(), String> {
    exemplar_kernels::set_enabled(run.kernels == Switch::On);
    let mut device = exemplar_train::device::select(&run.device).map_err(|e| e.to_string())?;
    device.configure(run.precision.dtype()).map_err(|e| {
        format!(
            "{} cannot compute in {:?}: {e:?}",
            run.device, run.precision
        )
    })?;
    device.seed(0);
    let mut config = config(run.arch, run.method, run.batch);
    config.image_size = run.image_size;
    config.queue_size = run.queue;
    config.width = run.width;
    config.stem = run.stem;
    config.validate().map_err(|e| e.to_string())?;
    let data = SyntheticObjects::new(0, Stream::Train, 2 * run.batch, run.image_size);
    let (seconds, loss) = time_steps(&config, &data, &device, run.warmup, run.steps)?;
    let line = serde_json::json!({
        "impl": "burn",
        "version": "0.22.1",
        "arch": run.arch.to_string(),
        "width": run.width,
        "stem": format!("{:?}", run.stem).to_lowercase(),
        "image_size": run.image_size,
        "precision": format!("{:?}", run.precision).to_lowercase(),
        "kernels": run.kernels == Switch::On,
        "channels_last": false,
        "device": run.device,
        "suite": "train",
        "method": run.method.name(),
        "batch": run.batch,
        "steps": run.steps,
        "step_seconds": seconds / run.steps as f64,
        "images_per_second": (run.steps * run.batch) as f64 / seconds,
        "last_loss": loss,
    });
    println!("{line}");
    Ok(())
}

fn main() {
    exemplar_train::allocator::keep_freed_memory();
    if let Err(err) = exemplar_kernels::join_thread_pool() {
        eprintln!("warning: training threads: {err}");
    }
    // One configuration with `--device`; `--help` describes that form (it used to run the
    // whole table below instead).
    let one_run = |a: String| {
        matches!(a.as_str(), "--device" | "--help" | "-h") || a.starts_with("--device=")
    };
    if std::env::args().any(one_run) {
        let run = DeviceRun::parse();
        if let Err(message) = measure_on_device(&run) {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let quick = std::env::var_os("EXEMPLAR_BENCH_QUICK").is_some();
    let data: Arc<dyn Dataset> =
        Arc::new(SyntheticObjects::new(0, Stream::Train, 2048, IMAGE_SIZE));
    let mut rows = Vec::new();
    let archs: &[(Depth, &[usize])] = if quick {
        &[(Depth::ResNet18, &[8])]
    } else {
        &[(Depth::ResNet18, &[8, 32, 64]), (Depth::ResNet50, &[8, 32])]
    };
    for &(arch, batches) in archs {
        for &batch in batches {
            for method in [Method::ExemplarV2, Method::Supervised] {
                let config = config(arch, method, batch);
                let (warmup, measured) = if quick { (1, 1) } else { (1, 3) };
                let row = measure(&config, data.as_ref(), warmup, measured);
                eprintln!(
                    "{} {} batch {}: {:.1} img/s",
                    row.arch, row.method, row.batch, row.images_per_second
                );
                rows.push(row);
            }
        }
    }
    let loader = loader_rate(Arc::clone(&data));
    eprintln!("loader: {loader:.0} img/s (2 threads, two aug+ views)");

    let mut report = String::new();
    let _ = writeln!(report, "# Pretraining throughput on the CPU\n");
    let _ = writeln!(report, "- machine: {}", machine());
    let _ = writeln!(
        report,
        "- backend: burn 0.22.1 `flex` (rayon, simd) with exemplar-kernels' convolution and batch norm, full-width networks, {IMAGE_SIZE} px inputs, ImageNet stem, K = 4096\n- beside PyTorch: `scripts/cpu-bench.sh` (results/train-throughput-cpu.md)"
    );
    let _ = writeln!(
        report,
        "- measured: mean of {} training steps after 1 warm-up step; batches built beforehand\n- command: `cargo bench -p exemplar-train --bench pretrain_throughput`\n",
        if quick { 1 } else { 3 }
    );
    let _ = writeln!(
        report,
        "| backbone | batch | method | images/s | s/step | vs supervised |"
    );
    let _ = writeln!(report, "|---|---:|---|---:|---:|---:|");
    for row in &rows {
        let supervised = rows
            .iter()
            .find(|r| r.arch == row.arch && r.batch == row.batch && r.method == Method::Supervised)
            .map_or(f64::NAN, |r| r.images_per_second);
        let _ = writeln!(
            report,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2}× |",
            row.arch,
            row.batch,
            row.method,
            row.images_per_second,
            row.step_seconds,
            row.images_per_second / supervised
        );
    }
    let _ = writeln!(
        report,
        "\nData loader (synthetic scenes, two aug+ views per image, 2 threads): {loader:.0} images/s, {:.0}× the fastest training step above.",
        loader / rows.iter().map(|r| r.images_per_second).fold(0.0, f64::max)
    );
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../results/pretrain-throughput-cpu.md"
    );
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../results"))
        .expect("results dir");
    std::fs::write(path, &report).expect("writing the report");
    println!("{report}");
}
