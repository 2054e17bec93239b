//! The product end to end, through its binaries: `train pretrain` a tiny backbone, `train
//! finetune` the four task heads on it, `export` all five models, start `serve` on a free port
//! and query every endpoint over HTTP.
//!
//! Each task endpoint's answer is checked against the model's own output: the Open Inference
//! Protocol's `infer` runs the bare network on the same pre-processed image, and the answer is
//! decoded again here with `exemplar_inference`. Bad requests must get a 4xx with a JSON reason
//! and leave the server answering.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use exemplar_inference::card::TaskSpec;
use exemplar_inference::{ModelCard, detection, landmarks, segmentation};
use exemplar_tests::{Server, binary, binary_path, floats, multipart, raw_output, tiny_models};
use serde_json::json;

/// The five exported models, trained once for every test in this file.
fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-e2e")))
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

fn jpeg_image() -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 60]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A photo-sized JPEG (320×240: smooth shading, a sharp-edged disc), which the server decodes
/// downscaled in the DCT domain for the 16 and 32 px test models.
fn photo_jpeg() -> Vec<u8> {
    let image = image::RgbImage::from_fn(320, 240, |x, y| {
        let (u, v) = (x as f32 / 320.0, y as f32 / 240.0);
        let shade = |f: f32| (127.0 + 100.0 * (f * u * 6.3).sin() * (f * v * 4.1).cos()) as u8;
        if (u - 0.6).powi(2) + (v - 0.4).powi(2) < 0.04 {
            image::Rgb([220, 40, 30])
        } else {
            image::Rgb([shade(1.0), shade(1.7), shade(2.3)])
        }
    });
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    image.write_with_encoder(encoder).unwrap();
    out
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn every_endpoint_answers_with_the_models_own_output() {
    let server = Server::start(models(), &[]);
    let image = png_image();
    let [w, h] = [48.0f32, 40.0];

    // Health and metadata.
    let live = server.get("/v2/health/live");
    assert_eq!(
        (live.status, live.json()["live"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(server.get("/v2/health/ready").status, 200);
    let meta = server.get("/v2/models/landmarks").json();
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 3, 32, 32]));
    assert_eq!(server.get("/v2/models/landmarks/ready").status, 200);
    let listed = server.get("/v2").json();
    assert_eq!(
        listed["models"].as_array().map(Vec::len),
        Some(5),
        "{listed}"
    );

    // Detection: decoded again from the raw map, the same boxes, scores and classes.
    let answer = server.post_image("/v1/detect", &image);
    let detect = answer.json();
    assert_eq!(answer.status, 200, "{detect}");
    assert_eq!(
        (detect["width"].as_u64(), detect["height"].as_u64()),
        (Some(48), Some(40))
    );
    let (card, map, shape) = raw_output(&server, models(), "detection", &image);
    let TaskSpec::Detection(decoding) = &card.task else {
        panic!("not a detector: {card:?}");
    };
    let expected = detection::decode(
        &map,
        card.class_names.len(),
        [shape[2], shape[3]],
        decoding,
        [w / card.input.width as f32, h / card.input.height as f32],
        [w, h],
    );
    let served = detect["detections"].as_array().unwrap();
    assert!(!expected.is_empty(), "with no threshold there are peaks");
    assert_eq!(served.len(), expected.len(), "{detect}");
    for (d, e) in served.iter().zip(&expected) {
        let [x0, y0, x1, y1] = e.bbox;
        let bbox = floats(&d["bbox"]);
        for (a, b) in bbox.iter().zip([x0, y0, x1 - x0, y1 - y0]) {
            assert!(close(*a, b), "{d} vs {e:?}");
        }
        assert!(close(d["score"].as_f64().unwrap() as f32, e.score), "{d}");
        assert_eq!(d["class_id"].as_u64(), Some(e.class as u64));
        assert_eq!(
            d["class_name"].as_str(),
            Some(card.class_names[e.class].as_str())
        );
    }

    // Segmentation: the PNG mask and the RLE masks are the argmax of the raw logits, resized
    // back to the submitted image.
    let (card, logits, shape) = raw_output(&server, models(), "segmentation", &image);
    let predicted = segmentation::argmax(&logits, shape[1], [shape[2], shape[3]]);
    let expected = segmentation::resize_nearest(&predicted, [shape[3], shape[2]], [48, 40]);
    let answer = server.post_image("/v1/segment", &image);
    let segment = answer.json();
    assert_eq!(answer.status, 200, "{segment}");
    assert_eq!(
        segment["classes"].as_array().map(Vec::len),
        Some(card.class_names.len())
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(segment["mask"]["data"].as_str().unwrap())
        .unwrap();
    let mask = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!((mask.width(), mask.height()), (48, 40));
    assert_eq!(mask.into_raw(), expected);
    let rle = server.post_image("/v1/segment?format=rle", &image).json();
    let mut covered = vec![false; expected.len()];
    for m in rle["masks"].as_array().unwrap() {
        let class = m["class_id"].as_u64().unwrap() as u8;
        let counts = exemplar_inference::rle::from_string(m["rle"]["counts"].as_str().unwrap())
            .expect("COCO RLE string");
        // COCO RLE runs alternate off/on in column-major order.
        let (mut at, mut on) = (0usize, false);
        for run in counts {
            for i in at..at + run as usize {
                let (x, y) = (i / 40, i % 40);
                let pixel = y * 48 + x;
                assert_eq!(expected[pixel] == class, on, "class {class} at ({x}, {y})");
                covered[pixel] |= on;
            }
            at += run as usize;
            on = !on;
        }
    }
    assert!(covered.iter().all(|&c| c), "the masks cover every pixel");

    // Landmarks: the raw coordinates, de-normalised to the image, with the card's names.
    let (card, coordinates, _) = raw_output(&server, models(), "landmarks", &image);
    let expected = landmarks::denormalize(&coordinates, [w, h]);
    let points = server.post_image("/v1/landmarks", &image).json();
    let points = points["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    for ((p, [x, y]), name) in points.iter().zip(&expected).zip(&card.class_names) {
        assert_eq!(p["name"].as_str(), Some(name.as_str()));
        assert!(close(p["x"].as_f64().unwrap() as f32, *x), "{p}");
        assert!(close(p["y"].as_f64().unwrap() as f32, *y), "{p}");
    }
    assert_eq!(points[0]["name"], "left_eye");

    // Embedding: the raw output itself.
    let (_, features, _) = raw_output(&server, models(), "backbone", &image);
    let embed = server.post_image("/v1/embed", &image).json();
    assert_eq!(embed["dim"].as_u64(), Some(features.len() as u64));
    let served = floats(&embed["embedding"]);
    assert!(
        served.iter().zip(&features).all(|(a, b)| close(*a, *b)),
        "{embed}"
    );

    // Classification: the softmax of the raw logits, best first.
    let (_, logits, _) = raw_output(&server, models(), "classification", &image);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let classify = server.post_image("/v1/classify?top_k=3", &image).json();
    let top = classify["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    let mut ranked: Vec<usize> = (0..logits.len()).collect();
    ranked.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    for (t, &class) in top.iter().zip(&ranked) {
        assert_eq!(t["class_id"].as_u64(), Some(class as u64), "{classify}");
        let probability = (logits[class] - max).exp() / sum;
        assert!(
            close(t["score"].as_f64().unwrap() as f32, probability),
            "{t}"
        );
    }

    // The same image as a multipart form (as `curl -F image=@file` sends it), naming the
    // model in the form, gets the same answer; so does a JPEG.
    let (content_type, form) = multipart(&[
        ("model", None, b"classification"),
        ("image", Some("x.png"), &image),
    ]);
    let answer = server.request("POST", "/v1/classify?top_k=3", &content_type, &form);
    assert_eq!(answer.status, 200, "{}", answer.json());
    assert_eq!(answer.json()["top"], classify["top"]);
    let (content_type, form) = multipart(&[("upload", Some("face.png"), &image)]);
    let answer = server.request("POST", "/v1/embed", &content_type, &form);
    assert_eq!(answer.json()["embedding"], embed["embedding"]);
    let answer = server.request("POST", "/v1/embed", "image/jpeg", &jpeg_image());
    assert_eq!(answer.status, 200);
    // `curl --data-binary @image.png` labels the bytes as a URL-encoded form: still an image.
    let answer = server.request(
        "POST",
        "/v1/embed",
        "application/x-www-form-urlencoded",
        &image,
    );
    assert_eq!(answer.json()["embedding"], embed["embedding"]);

    // Prometheus metrics counted the requests and the batches.
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.content_type.starts_with("text/plain"),
        "{}",
        metrics.content_type
    );
    let text = String::from_utf8(metrics.body).unwrap();
    for needle in [
        "exemplar_requests_total{endpoint=\"/v1/detect\",status=\"200\"} 1",
        "exemplar_batch_size_count{model=\"classification\"}",
        "exemplar_inference_success_total{model=\"classification\"}",
        "exemplar_inference_exec_count_total{model=\"detection\"}",
        "exemplar_queue_seconds_bucket",
        "exemplar_compute_seconds_bucket{model=\"landmarks\"",
        "exemplar_request_seconds_bucket",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let spec = server.get("/openapi.json").json();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/segment"]["post"].is_object());

    // Each model's metadata names the route that answers with it, and that route does.
    for (model, route) in [
        ("detection", "/v1/detect"),
        ("segmentation", "/v1/segment"),
        ("landmarks", "/v1/landmarks"),
        ("backbone", "/v1/embed"),
        ("classification", "/v1/classify"),
    ] {
        let meta = server.get(&format!("/v2/models/{model}")).json();
        assert_eq!(meta["route"], route, "{model}");
        let answer = server.post_image(&format!("{route}?model={model}"), &image);
        assert_eq!(answer.status, 200, "{route}: {}", answer.json());
    }
}

/// Photos much larger than the input are decoded downscaled (DCT domain), so the server's input is
/// not the training side's to the bit (that is checked on small images above). The stated
/// tolerance, against what the classifier gives for the training side's pre-processing: every
/// class probability within 0.02 (0.0075 measured) and the same best class. The inputs
/// themselves are compared in inference/tests/decode.rs. (The test's embedding backbone,
/// four channels wide at 16 px, moves by a fifth of its length for the same input change: too
/// sensitive a network to pin.)
#[test]
fn downscaled_photos_answer_within_tolerance_of_the_training_side() {
    let server = Server::start(models(), &[]);
    let photo = photo_jpeg();
    let (_, logits, _) = raw_output(&server, models(), "classification", &photo);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let classify = server
        .post_image(&format!("/v1/classify?top_k={}", logits.len()), &photo)
        .json();
    let top = classify["top"].as_array().unwrap();
    let best = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    assert_eq!(top[0]["class_id"].as_u64(), Some(best as u64), "{classify}");
    for t in top {
        let class = t["class_id"].as_u64().unwrap() as usize;
        let expected = (logits[class] - max).exp() / sum;
        let difference = (t["score"].as_f64().unwrap() as f32 - expected).abs();
        assert!(difference <= 0.02, "{t} against {expected}");
    }
}

#[test]
fn bad_requests_get_4xx_with_a_reason_and_the_server_carries_on() {
    let server = Server::start(models(), &["--max-body-bytes", "200000"]);
    let image = png_image();
    let mut truncated_jpeg = jpeg_image();
    truncated_jpeg.truncate(truncated_jpeg.len() / 2);
    let huge_png = {
        let mut png = Vec::new();
        image::GrayImage::new(1, 1)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // The IHDR's width and height: 100 000 × 100 000, ten billion pixels.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        png
    };
    let (form_type, no_image) = multipart(&[("model", None, b"classification")]);
    let (_, bad_form) = multipart(&[("image", Some("x.png"), &image)]);
    let bad_form = &bad_form[..bad_form.len() / 2];
    let oip = "/v2/models/classification/infer";
    // A photo cut inside its scan data: decoders would fill in the rest and answer 200.
    let photo = photo_jpeg();
    let cut_photo = &photo[..photo.len() * 2 / 3];
    let mut cases: Vec<(&str, &str, &[u8], u16, &str)> = vec![
        ("/v1/classify", "image/jpeg", &truncated_jpeg, 400, "unreadable image"),
        ("/v1/classify", "image/png", b"hello, not an image", 400, "unreadable image"),
        ("/v1/classify", "image/png", b"", 400, "empty body"),
        ("/v1/classify", "image/png", &huge_png, 400, "unreadable image"),
        ("/v1/classify", "application/json", &image, 415, "not an image"),
        ("/v1/classify", "text/plain", b"a cat", 415, "not an image"),
        ("/v1/classify", &form_type, &no_image, 400, "no 'image' field"),
        ("/v1/classify", &form_type, bad_form, 400, "multipart"),
        ("/v1/classify?model=nope", "image/png", &image, 404, "no model named 'nope'"),
        ("/v1/classify?model=landmarks", "image/png", &image, 400, "landmarks model"),
        ("/v1/segment?format=svg", "image/png", &image, 400, "unknown mask format"),
        ("/v1/detect?score_threshold=1.5", "image/png", &image, 400, "score_threshold"),
        ("/v1/detect?score_threshold=high", "image/png", &image, 400, "score_threshold"),
        ("/v1/nothing", "image/png", &image, 404, ""),
        ("/v2/models/nope/infer", "application/json", b"{}", 404, "nope"),
        (oip, "application/json", b"{not json", 400, ""),
        (
            oip,
            "application/json",
            br#"{"inputs": [{"name": "x", "shape": [1, 3, 2, 2], "datatype": "FP32", "data": [1]}]}"#,
            400,
            "unknown input 'x'",
        ),
    ];
    cases.extend(
        [
            "/v1/classify",
            "/v1/detect",
            "/v1/segment",
            "/v1/landmarks",
            "/v1/embed",
        ]
        .map(|route| (route, "image/jpeg", cut_photo, 400, "truncated JPEG")),
    );
    for (path, content_type, body, status, reason) in cases {
        let answer = server.request("POST", path, content_type, body);
        let json = answer.json();
        assert_eq!(answer.status, status, "{path} ({content_type}): {json}");
        let error = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {json}"));
        assert!(error.contains(reason), "{path}: {error}");
    }
    // Shape and data disagree, and a shape that is not the model's.
    let card = ModelCard::read(&models().join("classification/model.json")).unwrap();
    let name = &card.input.name;
    for (shape, data) in [
        ([1, 3, 32, 32], vec![0.5f32; 7]),
        ([1, 3, 8, 8], vec![0.5; 192]),
    ] {
        let request =
            json!({"inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": data}]});
        let answer = server.request(
            "POST",
            oip,
            "application/json",
            request.to_string().as_bytes(),
        );
        assert_eq!(answer.status, 400, "{shape:?}: {}", answer.json());
    }
    let answer = server.request("POST", "/v1/classify", "image/png", &vec![0u8; 300_000]);
    assert_eq!(answer.status, 413);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes")
    );

    // Still alive, and still right.
    assert_eq!(server.get("/v2/health/ready").status, 200);
    let answer = server.post_image("/v1/classify", &image);
    assert_eq!(answer.status, 200, "{}", answer.json());
    let metrics = String::from_utf8(server.get("/metrics").body).unwrap();
    assert!(
        metrics.contains("exemplar_requests_total{endpoint=\"/v1/classify\",status=\"400\"}"),
        "{metrics}"
    );
}

#[test]
fn cuda_is_an_error_without_its_provider_and_auto_falls_back_to_the_cpu() {
    let models = models();
    // The CPU wheel has no CUDA provider (and this machine may have no GPU).
    let cuda_provider = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.runtime/onnxruntime/libonnxruntime_providers_cuda.so");
    if cuda_provider.exists() {
        eprintln!("skipped: the CUDA build of ONNX Runtime is installed here");
        return;
    }
    let output = binary("serve")
        .arg("--models")
        .arg(models)
        .args(["--device", "cuda", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("CUDA execution provider did not load"),
        "{stderr}"
    );
    let server = Server::start(models, &["--device", "auto"]);
    let meta = server.get("/v2").json();
    assert_eq!(meta["device"].as_str(), Some("CPU"), "{meta}");
}

/// The serve image's runtime, outside Docker: `docker/install-runtime.sh` lays out the binary
/// and ONNX Runtime as the image does, and `docker/smoke-test.sh` starts it the way the image
/// does (EXEMPLAR_* variables), runs its HEALTHCHECK command and stops it with SIGTERM.
#[test]
fn the_container_runtime_installs_and_serves_outside_docker() {
    let docker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker");
    let prefix = tempfile::tempdir().unwrap();
    let opt = prefix.path().join("opt");
    exemplar_tests::succeed(
        std::process::Command::new(docker.join("install-runtime.sh"))
            .arg(&opt)
            .arg(binary_path("serve")),
    );
    assert!(opt.join("bin/serve").exists());
    assert!(
        opt.join("lib/onnxruntime/libonnxruntime.so.1.31.1")
            .exists()
    );
    let output = std::process::Command::new(docker.join("smoke-test.sh"))
        .arg(&opt)
        .arg(models())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("healthy: 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("stopped cleanly on SIGTERM"), "{stdout}");
}
