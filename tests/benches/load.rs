//! Load benchmark of `serve` (not a test): many concurrent clients on loopback against one
//! classifier, with and without dynamic batching, and the same model called in-process through
//! ONNX Runtime as the floor. Writes `results/serve-load-cpu.md`.
//!
//! `cargo build --release -p exemplar-serve && cargo bench -p exemplar-tests --bench load` (after
//! scripts/install-onnxruntime.sh; the bench starts the `serve` binary that build made).
//! Figures are only comparable within one run: the machines are noisy.
//!
//! With `--models DIR` it instead loads one already exported model on any device and prints one
//! JSON line (scripts/gpu-bench.sh's serve end-to-end row):
//!
//! ```text
//! load --models DIR --model embedding --endpoint /v1/embed --device cuda --clients 64 \
//!     --requests 40 --serve target/release/serve -- --max-batch 32 --max-delay-ms 2
//! ```
//!
//! Each request is a 640×480 JPEG, decoded and pre-processed by the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exemplar_train::finetune::classification::ClassificationTask;
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::{self, TaskKind};

const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 40;

/// The default fine-tuning architecture (quarter-width ResNet-18, 64 px), briefly trained:
/// the weights do not matter for speed.
fn exported_classifier(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let mut config = FinetuneConfig::defaults(TaskKind::Classification);
    config.epochs = 1;
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 16;
    finetune::finetune::<ClassificationTask>(config, &run, false).expect("fine-tuning");
    let models = dir.join("models");
    exemplar_export::export(&run, &models.join("classifier"), 2).expect("export");
    models
}

fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(160, 120, |x, y| {
        image::Rgb([(x % 256) as u8, (y * 2 % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

struct Server(Child, String);

impl Server {
    fn start(models: &Path, args: &[&str]) -> Self {
        let binary = exemplar_tests::binary_path("serve");
        Self::start_with(&binary, models, "cpu", args, Stdio::null()).expect("serve starts")
    }

    /// Starts `binary` and waits for its "listening" line; `stderr` receives its log.
    fn start_with(
        binary: &Path,
        models: &Path,
        device: &str,
        args: &[&str],
        stderr: Stdio,
    ) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .arg("--models")
            .arg(models)
            .args(["--addr", "127.0.0.1:0", "--device", device])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match line.trim().strip_prefix("serve: listening on http://") {
            Some(addr) => Ok(Server(child, addr.to_string())),
            None => {
                let status = child.wait().map_err(|e| e.to_string())?;
                Err(format!("serve did not start ({status}); its log is above"))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post_to(addr: &str, target: &str, body: &[u8]) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    started.elapsed()
}

struct Figures {
    label: String,
    requests: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn summarize(label: &str, mut latencies: Vec<Duration>, wall: Duration) -> Figures {
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        label: label.to_string(),
        requests: latencies.len(),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
        p50_ms: pick(0.5).as_secs_f64() * 1e3,
        p99_ms: pick(0.99).as_secs_f64() * 1e3,
    }
}

fn load(label: &str, models: &Path, args: &[&str], body: &[u8]) -> Figures {
    let server = Server::start(models, args);
    drive(
        label,
        &server.1,
        "/v1/classify",
        body,
        CLIENTS,
        REQUESTS_PER_CLIENT,
    )
}

/// Warms the server up, then `clients` threads each send `requests` requests.
fn drive(
    label: &str,
    addr: &str,
    target: &str,
    body: &[u8],
    clients: usize,
    requests: usize,
) -> Figures {
    for _ in 0..10 {
        post_to(addr, target, body); // warm-up
    }
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    (0..requests)
                        .map(|_| post_to(addr, target, body))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    summarize(label, latencies, started.elapsed())
}

/// The floor: the same graph through ONNX Runtime in this process, one image per call, on the
/// image the server would have built (decode and preprocessing included, as in the server).
fn in_process(models: &Path, body: &[u8]) -> Figures {
    let card = exemplar_inference::ModelCard::read(&models.join("classifier/model.json")).unwrap();
    let environment = exemplar_inference::runtime::environment().unwrap();
    let mut session = ort::session::Session::builder(environment)
        .unwrap()
        .commit_from_file(models.join("classifier/model.onnx"))
        .unwrap();
    let size = [card.input.width, card.input.height];
    let mut run = || {
        let started = Instant::now();
        let image = exemplar_inference::image::decode_bytes(body).unwrap();
        let mut pixels = Vec::new();
        exemplar_inference::image::preprocess(&image, size, &card.input.normalization, &mut pixels);
        let input = ort::value::Tensor::from_array(([1, 3, size[1], size[0]], pixels)).unwrap();
        let outputs = session
            .run(ort::inputs![card.input.name.as_str() => input])
            .unwrap();
        let _ = outputs[0].try_extract_tensor::<f32>().unwrap();
        started.elapsed()
    };
    for _ in 0..10 {
        run();
    }
    let started = Instant::now();
    let latencies: Vec<Duration> = (0..CLIENTS * REQUESTS_PER_CLIENT).map(|_| run()).collect();
    summarize(
        "ONNX Runtime in-process, 1 image per call, sequential",
        latencies,
        started.elapsed(),
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// A 640×480 JPEG: a typical upload, whose decoding is part of the server's work.
fn jpeg() -> Vec<u8> {
    let image = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// `--models DIR --model NAME [--endpoint P] [--device D] [--clients N] [--requests N]
/// [--serve BIN] [-- serve flags…]`: one exported model under load, one JSON line out.
fn exported_model_load(args: &[String]) -> Result<(), String> {
    let (ours, serve_flags) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let value = |flag: &str| {
        ours.iter()
            .position(|a| a == flag)
            .and_then(|i| ours.get(i + 1))
            .map(String::as_str)
    };
    let number = |flag: &str, default: usize| -> Result<usize, String> {
        value(flag).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{flag} takes a number, not '{v}'"))
        })
    };
    let models = Path::new(value("--models").ok_or("--models DIR is needed")?);
    let model = value("--model").ok_or("--model NAME is needed")?;
    let endpoint = value("--endpoint").unwrap_or("/v1/embed");
    let device = value("--device").unwrap_or("cpu");
    let clients = number("--clients", CLIENTS)?;
    let requests = number("--requests", REQUESTS_PER_CLIENT)?;
    let binary =
        value("--serve").map_or_else(|| exemplar_tests::binary_path("serve"), PathBuf::from);
    let flags: Vec<&str> = serve_flags.iter().map(String::as_str).collect();
    let server = Server::start_with(&binary, models, device, &flags, Stdio::inherit())?;
    let body = jpeg();
    let target = format!("{endpoint}?model={model}");
    let f = drive("serve", &server.1, &target, &body, clients, requests);
    let line = serde_json::json!({
        "impl": "serve",
        "suite": "serve",
        "device": device,
        "model": model,
        "endpoint": endpoint,
        "clients": clients,
        "requests": f.requests,
        "serve_flags": flags.join(" "),
        "source": "640x480 JPEG",
        "images_per_second": f.per_second,
        "p50_ms": f.p50_ms,
        "p99_ms": f.p99_ms,
    });
    println!("{line}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    if args.iter().any(|a| a == "--models") {
        if let Err(message) = exported_model_load(&args) {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let models = exported_classifier(dir.path());
    let body = png();
    let figures = vec![
        in_process(&models, &body),
        load(
            "serve, no batching (--max-batch 1)",
            &models,
            &["--max-batch", "1"],
            &body,
        ),
        load(
            "serve, dynamic batching (--max-batch 8 --max-delay-ms 2)",
            &models,
            &["--max-batch", "8", "--max-delay-ms", "2"],
            &body,
        ),
    ];
    let mut report = format!(
        "# serve load benchmark (CPU)\n\nMachine: {}. Model: the default fine-tuning classifier (ResNet-18 at width 0.25, small stem, 64 px input), exported to ONNX, ONNX Runtime {} on the CPU. Request: a {}-byte 160×120 PNG to `/v1/classify` (decode, resize, normalise, infer, softmax). {} concurrent clients × {} requests over loopback, a new connection per request.\n\nCommand: `cargo bench -p exemplar-tests --bench load`. Compare rows of one run only.\n\n| setup | requests | requests/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
        machine(),
        exemplar_inference::runtime::ORT_VERSION,
        body.len(),
        CLIENTS,
        REQUESTS_PER_CLIENT
    );
    for f in &figures {
        report.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} |\n",
            f.label, f.requests, f.per_second, f.p50_ms, f.p99_ms
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(root.join("results")).unwrap();
    std::fs::write(root.join("results/serve-load-cpu.md"), &report).unwrap();
    print!("{report}");
}
