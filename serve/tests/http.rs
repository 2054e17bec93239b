//! The service end to end: tiny models of every kind are trained, exported, served by the real
//! `serve` binary on a free port, and queried over HTTP; then bad requests get 4xx answers and
//! the server keeps answering.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use exemplar_models::{Depth, Stem};
use exemplar_train::config::{Method, PretrainConfig};
use exemplar_train::finetune::classification::ClassificationTask;
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::detection::DetectionTask;
use exemplar_train::finetune::landmarks::LandmarkTask;
use exemplar_train::finetune::segmentation::SegmentationTask;
use exemplar_train::finetune::{self, TaskKind};
use serde_json::Value;

fn finetuned(task: TaskKind, dir: &Path) {
    let mut config = FinetuneConfig::defaults(task);
    config.width = 0.0625;
    config.image_size = 32;
    config.head_channels = 8;
    config.batch_size = 16;
    config.epochs = 1;
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 16;
    let result = match task {
        TaskKind::Detection => finetune::finetune::<DetectionTask>(config, dir, false),
        TaskKind::Segmentation => finetune::finetune::<SegmentationTask>(config, dir, false),
        TaskKind::Landmarks => finetune::finetune::<LandmarkTask>(config, dir, false),
        TaskKind::Classification => finetune::finetune::<ClassificationTask>(config, dir, false),
    };
    result.unwrap_or_else(|e| panic!("{task}: {e}"));
}

fn pretrained(dir: &Path) {
    let mut config = PretrainConfig::defaults(Method::ExemplarV2);
    config.arch = Depth::ResNet18;
    config.width = 0.0625;
    config.stem = Stem::Small;
    config.image_size = 16;
    config.batch_size = 16;
    config.queue_size = 64;
    config.epochs = 1;
    config.max_steps = Some(2);
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 16;
    config.knn_k = 5;
    exemplar_train::pretrain::pretrain(&config, dir, false).expect("pretraining");
}

/// Trains and exports one model of each kind into `models/`.
fn models(root: &Path) -> std::path::PathBuf {
    let models = root.join("models");
    for (task, name) in [
        (TaskKind::Detection, "detector"),
        (TaskKind::Segmentation, "segmenter"),
        (TaskKind::Landmarks, "faces"),
        (TaskKind::Classification, "classifier"),
    ] {
        let run = root.join(task.name());
        finetuned(task, &run);
        exemplar_export::export(&run, &models.join(name), 2).expect("export");
    }
    let backbone = root.join("pretrain");
    pretrained(&backbone);
    exemplar_export::export(&backbone, &models.join("backbone"), 2).expect("export");
    models
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(models: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
            .arg("--models")
            .arg(models)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Self { child, addr }
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        // An oversized body may be refused before it is all sent: read the answer regardless.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(body));
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}: {text}"));
        let start = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |p| p + 4);
        (status, raw[start..].to_vec())
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, body) = self.request(method, path, body);
        let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&body))
        });
        (status, value)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 48×40 PNG with a bright square, as a client would send.
fn png_image() -> Vec<u8> {
    let image = image::RgbImage::from_fn(48, 40, |x, y| {
        if (10..30).contains(&x) && (8..28).contains(&y) {
            image::Rgb([230, 200, 40])
        } else {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn every_endpoint_answers_in_image_pixels_and_bad_requests_get_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let models = models(dir.path());
    let server = Server::start(&models, &["--max-body-bytes", "200000"]);
    let image = png_image();

    let (status, live) = server.json("GET", "/v2/health/live", b"");
    assert_eq!((status, live["live"].as_bool()), (200, Some(true)));
    let (status, meta) = server.json("GET", "/v2/models/faces", b"");
    assert_eq!(status, 200);
    assert_eq!(
        meta["inputs"][0]["shape"],
        serde_json::json!([-1, 3, 32, 32])
    );

    let (status, detect) = server.json("POST", "/v1/detect", &image);
    assert_eq!(status, 200, "{detect}");
    assert_eq!(
        (detect["width"].as_u64(), detect["height"].as_u64()),
        (Some(48), Some(40))
    );
    for d in detect["detections"].as_array().unwrap() {
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= 48.0 && b[1] + b[3] <= 40.0,
            "{d}"
        );
        assert!(d["class_name"].is_string() && d["score"].as_f64().unwrap() >= 0.3);
    }

    let (status, segment) = server.json("POST", "/v1/segment", &image);
    assert_eq!(status, 200, "{segment}");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(segment["mask"]["data"].as_str().unwrap())
        .unwrap();
    let mask = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!((mask.width(), mask.height()), (48, 40));
    assert!(mask.pixels().all(|p| (p.0[0] as usize) < 11));
    let (status, rle) = server.json("POST", "/v1/segment?format=rle", &image);
    assert_eq!(status, 200);
    let pixels: u64 = rle["masks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let counts =
                exemplar_inference::rle::from_string(m["rle"]["counts"].as_str().unwrap()).unwrap();
            counts.iter().skip(1).step_by(2).sum::<u64>()
        })
        .sum();
    assert_eq!(
        pixels,
        48 * 40,
        "the per-class masks cover the image exactly once"
    );

    let (status, points) = server.json("POST", "/v1/landmarks", &image);
    assert_eq!(status, 200);
    let points = points["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    assert_eq!(points[0]["name"], "left_eye");

    let (status, embed) = server.json("POST", "/v1/embed", &image);
    assert_eq!(status, 200);
    assert_eq!(embed["dim"], 32);
    // The same image twice gives the same embedding (batched with other work or not).
    let (_, again) = server.json("POST", "/v1/embed?model=backbone", &image);
    assert_eq!(embed["embedding"], again["embedding"]);

    let (status, classify) = server.json("POST", "/v1/classify?top_k=3", &image);
    assert_eq!(status, 200);
    let top = classify["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert!(top[0]["score"].as_f64() >= top[1]["score"].as_f64());

    // The Open Inference Protocol's infer runs the bare network: fed the same preprocessed
    // image, it must give the numbers the task endpoints answered with.
    let oip = |model: &str| {
        let card =
            exemplar_inference::ModelCard::read(&models.join(model).join("model.json")).unwrap();
        let decoded = exemplar_inference::image::decode_bytes(&image).unwrap();
        let mut pixels = Vec::new();
        let size = [card.input.width, card.input.height];
        exemplar_inference::image::preprocess(
            &decoded,
            size,
            &card.input.normalization,
            &mut pixels,
        );
        let request = serde_json::json!({
            "id": "42",
            "inputs": [{"name": card.input.name, "shape": [1, 3, size[1], size[0]], "datatype": "FP32", "data": pixels}],
        });
        let (status, answer) = server.json(
            "POST",
            &format!("/v2/models/{model}/infer"),
            request.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], "42");
        answer["outputs"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect::<Vec<f32>>()
    };
    let embedding: Vec<f32> = embed["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(oip("backbone"), embedding);
    let logits = oip("classifier");
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let best = top[0]["class_id"].as_u64().unwrap() as usize;
    let expected = (logits[best] - max).exp() / sum;
    assert!((top[0]["score"].as_f64().unwrap() as f32 - expected).abs() < 1e-6);
    assert_eq!(
        logits.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        logits[best]
    );
    let (status, bad) = server.json(
        "POST",
        "/v2/models/classifier/infer",
        br#"{"inputs": [{"name": "x", "shape": [1, 3, 2, 2], "datatype": "FP32", "data": [1]}]}"#,
    );
    assert_eq!(status, 400);
    assert!(
        bad["error"].as_str().unwrap().contains("unknown input 'x'"),
        "{bad}"
    );
    let (status, _) = server.json("POST", "/v2/models/classifier/infer", b"{not json");
    assert_eq!(status, 400);

    // Prometheus metrics saw the requests and the batches.
    let (status, text) = server.request("GET", "/metrics", b"");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("exemplar_requests_total{endpoint=\"/v1/detect\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("exemplar_batch_size_count{model=\"classifier\"}"),
        "{text}"
    );

    // Bad requests: each a 4xx with a JSON reason, and the server carries on.
    let mut truncated = image.clone();
    truncated.truncate(image.len() / 2);
    let huge = {
        let mut png = Vec::new();
        image::GrayImage::new(1, 1)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        png
    };
    for (path, body, expected) in [
        ("/v1/classify", truncated, 400),
        ("/v1/classify", b"hello, not an image".to_vec(), 400),
        ("/v1/classify", Vec::new(), 400),
        ("/v1/classify", huge, 400),
        ("/v1/classify?model=nope", image.clone(), 404),
        ("/v1/classify?model=faces", image.clone(), 400),
        ("/v1/segment?format=svg", image.clone(), 400),
        ("/v1/nothing", image.clone(), 404),
    ] {
        let (status, body) = server.json("POST", path, &body);
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = server.json("POST", "/v1/classify", &vec![0u8; 300_000]);
    assert_eq!(status, 413);
    assert!(
        body["error"].as_str().unwrap().contains("--max-body-bytes"),
        "{body}"
    );
    let (status, spec) = server.json("GET", "/openapi.json", b"");
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/segment"]["post"].is_object());
    let (status, _) = server.json("GET", "/v2/health/ready", b"");
    assert_eq!(status, 200, "the server still answers");
}

#[test]
fn cuda_is_an_error_without_its_provider_and_auto_falls_back_to_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("classifier");
    finetuned(TaskKind::Classification, &run);
    let models = dir.path().join("models");
    exemplar_export::export(&run, &models.join("c"), 1).expect("export");
    // The CPU wheel has no CUDA provider (and this machine may have no GPU).
    let cuda_provider = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.runtime/onnxruntime/libonnxruntime_providers_cuda.so");
    if cuda_provider.exists() {
        eprintln!("skipped: the CUDA build of ONNX Runtime is installed here");
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--models")
        .arg(&models)
        .args(["--device", "cuda", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("CUDA execution provider did not load"),
        "{stderr}"
    );
    let server = Server::start(&models, &["--device", "auto"]);
    let (status, meta) = server.json("GET", "/v2", b"");
    assert_eq!((status, meta["device"].as_str()), (200, Some("CPU")));
}

#[test]
fn a_models_directory_without_models_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--models")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("holds no exported models"), "{stderr}");
}
