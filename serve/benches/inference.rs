//! ONNX Runtime inference throughput of one exported model, and the CPU-side image decoding and
//! pre-processing rate that has to keep up with it. Each measurement is one JSON line on stdout,
//! the form scripts/gpu-bench.sh compares with PyTorch's (scripts/gpu-bench/reference.py
//! `infer`).
//!
//! ```text
//! inference --model models/embedding --device cuda --batches 1,32,256 --io pinned --provider tuned
//! inference --decode 16          # decode + pre-process rate with 16 threads
//! ```
//!
//! `--io` says where the batch lives, which is the difference the GPU measurements are about:
//! - `host`: a new host tensor in, the output copied out, per call (serve's path today);
//! - `pinned`: input and output bound (I/O binding) to page-locked host buffers allocated once,
//!   which the CUDA provider copies to and from the device asynchronously; on the CPU, plain
//!   host buffers bound the same way;
//! - `device`: the input copied to the device once and the output left there — the ceiling
//!   of the network alone, what PyTorch measures with resident tensors.
//!
//! `--provider` picks the CUDA execution provider's options: `default` (ONNX Runtime's), `tuned`
//! (serve's: exhaustive cuDNN search, unlimited workspace), `nhwc` (`tuned` with NHWC kernels)
//! and `tf32-off` (`tuned` without TF32).

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use exemplar_inference::ModelCard;
use exemplar_inference::image::{decode_bytes, preprocess};
use exemplar_inference::runtime::{ORT_VERSION, cuda_provider, environment};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::Tensor;

#[derive(Parser, Debug)]
struct Args {
    /// An exported model directory (model.json + model.onnx).
    #[arg(long, required_unless_present = "decode")]
    model: Option<PathBuf>,
    /// cpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "1,32,256", value_delimiter = ',')]
    batches: Vec<usize>,
    #[arg(long, value_enum, default_value = "host")]
    io: Io,
    #[arg(long, value_enum, default_value = "tuned")]
    provider: Provider,
    /// Untimed calls per batch size first (cuDNN's algorithm search happens here).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed calls per batch size: at least this many, and enough for --min-images.
    #[arg(long, default_value_t = 10)]
    min_iters: usize,
    #[arg(long, default_value_t = 2048)]
    min_images: usize,
    /// Instead of inference: decode and pre-process a 640×480 JPEG on this many threads.
    #[arg(long)]
    decode: Option<usize>,
    /// `cargo bench` passes it; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Io {
    Host,
    Pinned,
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    Default,
    Tuned,
    Nhwc,
    Tf32Off,
}

fn main() {
    let args = Args::parse();
    let result = match (args.decode, &args.model) {
        (Some(threads), _) => decode_rate(threads),
        (None, Some(model)) => inference(&args, model),
        (None, None) => Err("--model or --decode is needed".into()),
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// The CUDA device index `--device` names, or `None` for the CPU.
fn cuda_index(device: &str) -> Result<Option<i32>, String> {
    match device {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        _ => device
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("unknown device '{device}' (expected cpu, cuda or cuda:N)")),
    }
}

fn session(
    model: &std::path::Path,
    cuda: Option<i32>,
    provider: Provider,
) -> Result<Session, String> {
    let environment = environment().map_err(|e| e.to_string())?;
    let mut builder = Session::builder(environment).map_err(|e| e.to_string())?;
    if let Some(id) = cuda {
        let ep = match provider {
            Provider::Default => ort::ep::CUDA::default().with_device_id(id),
            Provider::Tuned => cuda_provider(id),
            Provider::Nhwc => cuda_provider(id).with_prefer_nhwc(true),
            Provider::Tf32Off => cuda_provider(id).with_tf32(false),
        };
        builder = builder
            .with_execution_providers([ep.build().error_on_failure()])
            .map_err(|e| format!("the CUDA execution provider did not load: {e}"))?;
    }
    builder
        .commit_from_file(model.join("model.onnx"))
        .map_err(|e| format!("{}: {e}", model.display()))
}

fn inference(args: &Args, model: &std::path::Path) -> Result<(), String> {
    let card = ModelCard::read(&model.join("model.json")).map_err(|e| e.to_string())?;
    let cuda = cuda_index(&args.device)?;
    let mut session = session(model, cuda, args.provider)?;
    let output = session
        .outputs()
        .first()
        .map(|o| o.name().to_string())
        .ok_or("the model has no outputs")?;
    let [h, w] = [card.input.height, card.input.width];
    for &n in &args.batches {
        let shape = [n, 3, h, w];
        // Any values will do: the speed of these networks does not depend on them.
        let pixels: Vec<f32> = (0..n * 3 * h * w)
            .map(|i| (i % 255) as f32 / 255.0)
            .collect();
        let mut runner = Runner::new(
            &session,
            args.io,
            cuda,
            &card.input.name,
            &output,
            shape,
            &pixels,
        )?;
        for _ in 0..args.warmup {
            runner.call(&mut session, &pixels)?;
        }
        let iterations = args.min_iters.max(args.min_images.div_ceil(n));
        let started = Instant::now();
        for _ in 0..iterations {
            runner.call(&mut session, &pixels)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "impl": "onnxruntime",
            "version": ORT_VERSION,
            "arch": card.provenance.backbone,
            "image_size": h,
            "precision": "f32",
            "channels_last": args.provider == Provider::Nhwc,
            "device": args.device,
            "suite": "infer",
            "batch": n,
            "io": format!("{:?}", args.io).to_lowercase(),
            "provider": match cuda {
                Some(_) => format!("{:?}", args.provider).to_lowercase(),
                None => "cpu".to_string(),
            },
            "iterations": iterations,
            "latency_ms": 1000.0 * seconds / iterations as f64,
            "images_per_second": (iterations * n) as f64 / seconds,
        });
        println!("{line}");
    }
    Ok(())
}

/// One batch size's calls in one `--io` mode.
enum Runner {
    Host {
        input: String,
        shape: [usize; 4],
    },
    /// Input bound to a page-locked (CUDA) or plain (CPU) host tensor refilled per call; the
    /// output bound to host memory of the same kind.
    Bound {
        binding: ort::session::IoBinding,
        input: String,
        staging: Tensor<f32>,
    },
    /// Input bound once; the output stays where the provider computed it.
    Resident {
        binding: ort::session::IoBinding,
    },
}

impl Runner {
    fn new(
        session: &Session,
        io: Io,
        cuda: Option<i32>,
        input: &str,
        output: &str,
        shape: [usize; 4],
        pixels: &[f32],
    ) -> Result<Self, String> {
        let e = |e: ort::Error| e.to_string();
        let host_memory = |kind: MemoryType| match cuda {
            Some(id) => MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                id,
                AllocatorType::Device,
                kind,
            ),
            None => MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            ),
        };
        match io {
            Io::Host => Ok(Runner::Host {
                input: input.to_string(),
                shape,
            }),
            Io::Pinned => {
                let allocator =
                    Allocator::new(session, host_memory(MemoryType::CPUInput).map_err(e)?)
                        .map_err(e)?;
                let mut staging = Tensor::<f32>::new(&allocator, shape).map_err(e)?;
                staging.extract_tensor_mut().1.copy_from_slice(pixels);
                let mut binding = session.create_binding().map_err(e)?;
                binding
                    .bind_output_to_device(output, &host_memory(MemoryType::CPUOutput).map_err(e)?)
                    .map_err(e)?;
                Ok(Runner::Bound {
                    binding,
                    input: input.to_string(),
                    staging,
                })
            }
            Io::Device => {
                let device_memory = match cuda {
                    Some(id) => MemoryInfo::new(
                        AllocationDevice::CUDA,
                        id,
                        AllocatorType::Device,
                        MemoryType::Default,
                    ),
                    None => host_memory(MemoryType::Default),
                }
                .map_err(e)?;
                let mut binding = session.create_binding().map_err(e)?;
                let tensor = Tensor::from_array((shape, pixels.to_vec())).map_err(e)?;
                binding.bind_input(input, &tensor).map_err(e)?;
                binding
                    .bind_output_to_device(output, &device_memory)
                    .map_err(e)?;
                Ok(Runner::Resident { binding })
            }
        }
    }

    /// One inference call; host modes read the whole output back, as a server must.
    fn call(&mut self, session: &mut Session, pixels: &[f32]) -> Result<(), String> {
        let e = |e: ort::Error| e.to_string();
        match self {
            Runner::Host { input, shape } => {
                let tensor = Tensor::from_array((*shape, pixels.to_vec())).map_err(e)?;
                let outputs = session
                    .run(ort::inputs![input.as_str() => tensor])
                    .map_err(e)?;
                let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(e)?;
                std::hint::black_box(values.to_vec());
            }
            Runner::Bound {
                binding,
                input,
                staging,
            } => {
                // The server's work per batch: write the decoded images into the staging buffer.
                staging.extract_tensor_mut().1.copy_from_slice(pixels);
                binding.bind_input(input.as_str(), staging).map_err(e)?;
                let outputs = session.run_binding(binding).map_err(e)?;
                let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(e)?;
                std::hint::black_box(values.to_vec());
            }
            Runner::Resident { binding } => {
                let outputs = session.run_binding(binding).map_err(e)?;
                binding.synchronize_outputs().map_err(e)?;
                std::hint::black_box(outputs.len());
            }
        }
        Ok(())
    }
}

/// Decodes and pre-processes one 640×480 JPEG (a typical upload) repeatedly on `threads`
/// threads: the rate at which serve's CPU side can feed the accelerator.
fn decode_rate(threads: usize) -> Result<(), String> {
    let image = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    let jpeg = jpeg.into_inner();
    let normalization = exemplar_inference::card::Normalization::default();
    let per_thread = 200;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    let mut out = Vec::new();
                    for _ in 0..per_thread {
                        let decoded = decode_bytes(&jpeg)?;
                        out.clear();
                        preprocess(&decoded, [224, 224], &normalization, &mut out);
                        std::hint::black_box(&out);
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| "a decoding thread panicked".to_string())?
        })
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let line = serde_json::json!({
        "impl": "exemplar-inference",
        "suite": "decode",
        "threads": threads.max(1),
        "source": "640x480 JPEG",
        "image_size": 224,
        "images_per_second": (threads.max(1) * per_thread) as f64 / seconds,
    });
    println!("{line}");
    Ok(())
}
