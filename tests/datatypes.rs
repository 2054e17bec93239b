//! Models exported with UINT8 and FP16 inputs (`export --input-datatype`). Their graphs convert
//! (and for UINT8 normalise) the input in front of the same network, so they must answer as
//! the FP32 export of the same weights does; Triton's clients speak to them in their datatype
//! over HTTP and gRPC, and `/v1` preprocesses pictures into their datatype.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exemplar_inference::decode::{DecodeLimits, decode};
use exemplar_inference::image::resize_rgb8;
use exemplar_inference::{InputDatatype, ModelCard};
use exemplar_tests::{Server, check_with_tritons_clients, floats, run, tiny_models};
use half::f16;
use serde_json::{Value, json};

/// The tiny models, plus the classifier and the detector exported again with UINT8 and FP16
/// inputs through the `export` binary (`classification-uint8`, `detection-fp16`, …).
fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datatypes-e2e");
        let models = tiny_models(&root);
        for task in ["classification", "detection"] {
            for datatype in ["uint8", "fp16"] {
                let run_dir = root.join(task).to_string_lossy().into_owned();
                let out = models.join(format!("{task}-{datatype}"));
                let printed = run(
                    "export",
                    &[
                        "--checkpoint",
                        &run_dir,
                        "--out",
                        &out.to_string_lossy(),
                        "--input-datatype",
                        datatype,
                    ],
                );
                let upper = datatype.to_uppercase();
                assert!(printed.contains(&format!("({upper} input)")), "{printed}");
            }
        }
        // The detection card's threshold, as tiny_models sets it for the FP32 export.
        for datatype in ["uint8", "fp16"] {
            let path = models.join(format!("detection-{datatype}/model.json"));
            let mut card = ModelCard::read(&path).unwrap();
            card.task = ModelCard::read(&models.join("detection/model.json"))
                .unwrap()
                .task;
            std::fs::write(&path, card.to_json()).unwrap();
        }
        models
    })
}

fn photo() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../serve/assets/samples/scene.png"))
        .unwrap()
}

/// `POST /v2/models/{model}/infer` with one JSON input; each output's values, in order.
fn infer(
    server: &Server,
    model: &str,
    datatype: &str,
    shape: &[usize],
    data: Value,
) -> Vec<Vec<f32>> {
    let request =
        json!({"inputs": [{"name": "images", "shape": shape, "datatype": datatype, "data": data}]});
    let answer = server.request(
        "POST",
        &format!("/v2/models/{model}/infer"),
        "application/json",
        request.to_string().as_bytes(),
    );
    let body = answer.json();
    assert_eq!(answer.status, 200, "{model}: {body}");
    body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| floats(&o["data"]))
        .collect()
}

/// Largest difference over the largest magnitude of `expected`.
fn relative_difference(got: &[Vec<f32>], expected: &[Vec<f32>]) -> f32 {
    assert_eq!(got.len(), expected.len());
    let (mut diff, mut scale) = (0.0f32, 1e-6f32);
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g.len(), e.len());
        for (a, b) in g.iter().zip(e) {
            diff = diff.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    diff / scale
}

#[test]
fn typed_exports_answer_as_the_fp32_export_of_the_same_weights() {
    let server = Server::start(models(), &[]);
    for task in ["classification", "detection"] {
        let card = ModelCard::read(&models().join(task).join("model.json")).unwrap();
        let (width, height) = (card.input.width, card.input.height);
        let shape = [1, 3, height, width];
        // The picture as the UINT8 model takes it, and the same pixels normalised for FP32.
        let decoded = decode(&photo(), DecodeLimits::default()).unwrap();
        let mut pixels = Vec::new();
        resize_rgb8(&decoded.pixels, [width, height], &mut pixels);
        let (mean, std) = (card.input.normalization.mean, card.input.normalization.std);
        let normalized: Vec<f32> = pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let c = i / (width * height);
                (p as f32 / 255.0 - mean[c]) / std[c]
            })
            .collect();
        let expected = infer(&server, task, "FP32", &shape, json!(normalized));

        let uint8 = format!("{task}-uint8");
        let meta = server.get(&format!("/v2/models/{uint8}")).json();
        assert_eq!(meta["inputs"][0]["datatype"], "UINT8", "{meta}");
        assert_eq!(meta["card"]["input"]["datatype"], "UINT8", "{meta}");
        let got = infer(&server, &uint8, "UINT8", &shape, json!(pixels));
        let difference = relative_difference(&got, &expected);
        assert!(difference < 1e-4, "{uint8}: {difference}");

        // FP16: the normalised pixels rounded to 16 bits; the network sees what FP32 would.
        let fp16 = format!("{task}-fp16");
        let meta = server.get(&format!("/v2/models/{fp16}")).json();
        assert_eq!(meta["inputs"][0]["datatype"], "FP16", "{meta}");
        let halves: Vec<f32> = normalized
            .iter()
            .map(|&v| f16::from_f32(v).to_f32())
            .collect();
        let rounded = infer(&server, task, "FP32", &shape, json!(halves));
        let got = infer(&server, &fp16, "FP16", &shape, json!(halves));
        let difference = relative_difference(&got, &rounded);
        assert!(difference < 1e-4, "{fp16}: {difference}");
        // And the rounding itself moves the answer little.
        let difference = relative_difference(&got, &expected);
        assert!(difference < 0.02, "{fp16} against FP32: {difference}");
    }
}

#[test]
fn v1_preprocesses_pictures_into_each_model_s_datatype() {
    let server = Server::start(models(), &[]);
    let classes = ModelCard::read(&models().join("classification/model.json"))
        .unwrap()
        .class_names
        .len();
    let scores = |model: &str| -> Vec<f64> {
        let path = format!("/v1/classify?model={model}&top_k={classes}");
        let answer = server.post_image(&path, &photo());
        let body = answer.json();
        assert_eq!(answer.status, 200, "{model}: {body}");
        let mut by_class = vec![0.0; classes];
        for entry in body["top"].as_array().unwrap() {
            by_class[entry["class_id"].as_u64().unwrap() as usize] =
                entry["score"].as_f64().unwrap();
        }
        by_class
    };
    let fp32 = scores("classification");
    for model in ["classification-uint8", "classification-fp16"] {
        // UINT8 rounds the resized pixels to 8 bits (at most half a level), FP16 the
        // normalised values to 16 bits: probabilities move by far less than 0.01.
        for (got, expected) in scores(model).iter().zip(&fp32) {
            assert!(
                (got - expected).abs() < 0.01,
                "{model}: {got} vs {expected}"
            );
        }
    }
    let detect = server.post_image("/v1/detect?model=detection-uint8", &photo());
    assert_eq!(detect.status, 200, "{}", detect.json());
    assert!(!detect.json()["detections"].as_array().unwrap().is_empty());
}

#[test]
fn tritons_clients_send_each_model_its_datatype_over_http_and_grpc() {
    check_with_tritons_clients(
        models(),
        &[
            "classification-uint8",
            "classification-fp16",
            "detection-uint8",
            "detection-fp16",
        ],
    );
}

#[test]
fn inputs_that_do_not_fit_the_datatype_are_400() {
    let server = Server::start(models(), &[]);
    let card = ModelCard::read(&models().join("classification-uint8/model.json")).unwrap();
    assert_eq!(card.input.datatype, InputDatatype::Uint8);
    let count = 3 * card.input.width * card.input.height;
    let shape = [1, 3, card.input.height, card.input.width];
    let post = |model: &str, datatype: &str, data: Value| {
        let request = json!({"inputs": [{"name": "images", "shape": shape, "datatype": datatype, "data": data}]});
        let answer = server.request(
            "POST",
            &format!("/v2/models/{model}/infer"),
            "application/json",
            request.to_string().as_bytes(),
        );
        (
            answer.status,
            answer.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let mut too_bright = vec![7; count];
    too_bright[5] = 256;
    let mut fractional = vec![json!(7); count];
    fractional[0] = json!(0.5);
    let mut huge = vec![json!(0.0); count];
    huge[1] = json!(1e9);
    for ((status, error), expected) in [
        (
            post("classification-uint8", "FP32", json!(vec![0.5; count])),
            "datatype FP32 is not supported (the model takes UINT8)",
        ),
        (
            post("classification", "UINT8", json!(vec![7; count])),
            "datatype UINT8 is not supported (the model takes FP32)",
        ),
        (
            post("classification-uint8", "UINT8", json!(too_bright)),
            "256 is not a UINT8 value",
        ),
        (
            post("classification-uint8", "UINT8", json!(fractional)),
            "0.5 is not a UINT8 value",
        ),
        (
            post("classification-fp16", "FP16", json!(huge)),
            "out of range for FP16",
        ),
    ] {
        assert_eq!(status, 400, "{error}");
        assert!(error.contains(expected), "{error}");
    }
    // Binary UINT8 data is one byte a value.
    let header = json!({"inputs": [{"name": "images", "shape": shape, "datatype": "UINT8",
                                    "parameters": {"binary_data_size": count}}]});
    let header = serde_json::to_vec(&header).unwrap();
    let length = header.len().to_string();
    let mut body = header;
    body.extend(vec![100u8; count]);
    let answer = server.request_with(
        "POST",
        "/v2/models/classification-uint8/infer",
        "application/octet-stream",
        &[("Inference-Header-Content-Length", &length)],
        &body,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(server.get("/v2/health/live").status == 200);
}
