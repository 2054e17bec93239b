//! The Open Inference Protocol and the OpenAPI document: Triton's own clients (`tests/oip-client/check.py`) against every
//! model over HTTP and gRPC, and the versioned model routes (`/v2/models/{m}/versions/{v}/…`): every model has
//! version 1, which answers as the unversioned route does; any other version is 404.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exemplar_tests::{
    Server, check_with_tritons_clients, oip_client_python as client_python, tiny_models,
};
use serde_json::{Value, json};

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("oip-e2e")))
}

#[test]
fn tritons_clients_speak_http_and_grpc_to_every_model() {
    check_with_tritons_clients(
        models(),
        &[
            "classification",
            "detection",
            "segmentation",
            "landmarks",
            "backbone",
        ],
    );
}

#[test]
fn binary_bodies_that_do_not_add_up_are_400() {
    let server = Server::start(models(), &[]);
    let meta = server.get("/v2/models/classification").json();
    let input = &meta["inputs"][0];
    let shape = [1usize, 3, 32, 32];
    assert_eq!(input["shape"], json!([-1, 3, 32, 32]));
    let values = vec![0.5f32; shape.iter().product()];
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let post = |header: &Value, binary: &[u8], length: Option<String>| {
        let json = serde_json::to_vec(header).unwrap();
        let length = length.unwrap_or_else(|| json.len().to_string());
        let mut body = json;
        body.extend_from_slice(binary);
        server.request_with(
            "POST",
            "/v2/models/classification/infer",
            "application/octet-stream",
            &[("Inference-Header-Content-Length", &length)],
            &body,
        )
    };
    let request = |size: usize| {
        json!({"inputs": [{"name": input["name"], "shape": shape, "datatype": "FP32",
                           "parameters": {"binary_data_size": size}}],
               "parameters": {"binary_data_output": true}})
    };
    let good = post(&request(bytes.len()), &bytes, None);
    assert_eq!(good.status, 200, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(good.content_type, "application/octet-stream");
    let json_length: usize = good
        .header("inference-header-content-length")
        .expect("binary answers name their JSON length")
        .parse()
        .unwrap();
    let header: Value = serde_json::from_slice(&good.body[..json_length]).unwrap();
    let size = header["outputs"][0]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(good.body.len(), json_length + size);

    for (answer, reason) in [
        (
            post(&request(bytes.len()), &bytes[..100], None),
            "only 100 follow",
        ),
        (
            post(&request(100), &bytes[..100], None),
            "[1, 3, 32, 32]: binary data of 100 bytes, the shape needs 12288 (FP32)",
        ),
        (
            post(
                &request(bytes.len()),
                &[bytes.as_slice(), &[0; 8]].concat(),
                None,
            ),
            "8 bytes follow the JSON header",
        ),
        (
            post(&request(bytes.len()), &bytes, Some("999999999".into())),
            "Inference-Header-Content-Length must be",
        ),
        (
            post(&request(bytes.len()), &bytes, Some("twelve".into())),
            "Inference-Header-Content-Length must be",
        ),
    ] {
        assert_eq!(answer.status, 400, "{reason}");
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(reason), "{error}");
    }
}

#[test]
fn version_1_answers_as_the_unversioned_routes_and_others_are_404() {
    let server = Server::start(models(), &[]);
    let meta = server.get("/v2/models/classification").json();
    assert_eq!(
        server.get("/v2/models/classification/versions/1").json(),
        meta
    );
    let ready = server.get("/v2/models/classification/versions/1/ready");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["ready"], true);

    let input = &meta["inputs"][0];
    let shape: Vec<usize> = input["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_i64().unwrap().max(1) as usize)
        .collect();
    let data: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| (i % 7) as f32 / 7.0)
        .collect();
    let request = json!({"inputs": [{"name": input["name"], "shape": shape, "datatype": "FP32", "data": data}]});
    let body = serde_json::to_vec(&request).unwrap();
    let infer = |path: &str| server.request("POST", path, "application/json", &body);
    let plain = infer("/v2/models/classification/infer");
    let versioned = infer("/v2/models/classification/versions/1/infer");
    assert_eq!(plain.status, 200);
    assert_eq!(versioned.status, 200);
    assert_eq!(versioned.json()["outputs"], plain.json()["outputs"]);

    for answer in [
        server.get("/v2/models/classification/versions/2"),
        server.get("/v2/models/classification/versions/2/ready"),
        infer("/v2/models/classification/versions/2/infer"),
    ] {
        assert_eq!(answer.status, 404);
        let reason = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(reason.contains("no version '2'"), "{reason}");
    }
    let unknown = server.get("/v2/models/nope/versions/1");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json(), json!({"error": "no model named 'nope'"}));
    let listed: Value =
        server.get("/openapi.json").json()["paths"]["/v2/models/{name}/versions/{version}/infer"]
            .clone();
    assert!(listed["post"].is_object(), "{listed}");
}

#[test]
fn exports_from_before_the_tensor_names_still_serve() {
    // Exports used to keep burn-onnx's capture-order names (`tensor_120` → `tensor_201`), which
    // their cards named.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("classification");
    std::fs::create_dir_all(&old).unwrap();
    let new = models().join("classification");
    let onnx = std::fs::read(new.join("model.onnx")).unwrap();
    let onnx = exemplar_export::names::rename_io(&onnx, "input.1", "output.1").unwrap();
    std::fs::write(old.join("model.onnx"), onnx).unwrap();
    let card = std::fs::read_to_string(new.join("model.json")).unwrap();
    assert!(card.contains(r#""name": "images""#) && card.contains(r#""name": "logits""#));
    let card = card
        .replace(r#""name": "images""#, r#""name": "input.1""#)
        .replace(r#""name": "logits""#, r#""name": "output.1""#);
    std::fs::write(old.join("model.json"), card).unwrap();

    let server = Server::start(dir.path(), &[]);
    let meta = server.get("/v2/models/classification").json();
    assert_eq!(meta["inputs"][0]["name"], "input.1");
    assert_eq!(meta["outputs"][0]["name"], "output.1");
    let mut photo = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]))
        .write_to(&mut photo, image::ImageFormat::Png)
        .unwrap();
    let photo = photo.into_inner();
    let answer = server.request("POST", "/v1/classify", "image/png", &photo);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let data = vec![0.25f32; 3 * 32 * 32];
    let request = json!({"inputs": [{"name": "input.1", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": data}]});
    let infer = server.request(
        "POST",
        "/v2/models/classification/infer",
        "application/json",
        &serde_json::to_vec(&request).unwrap(),
    );
    assert_eq!(
        infer.status,
        200,
        "{}",
        String::from_utf8_lossy(&infer.body)
    );
    assert_eq!(infer.json()["outputs"][0]["name"], "output.1");
}

#[test]
fn the_openapi_document_is_valid_and_describes_every_route() {
    let validator = client_python().with_file_name("openapi-spec-validator");
    let server = Server::start(models(), &[]);
    let document = server.get("/openapi.json");
    assert_eq!(document.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &document.body).unwrap();
    let output = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let document = document.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for route in [
        "/v1/detect",
        "/v1/segment",
        "/v1/landmarks",
        "/v1/embed",
        "/v1/classify",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
        "/metrics",
        "/openapi.json",
        "/",
        "/docs",
    ] {
        assert!(paths.contains_key(route), "{route} is not described");
    }
    // The answers' schemas come from their types, and each task takes its own models.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["DetectAnswer"]["required"],
        json!(["model", "width", "height", "detections"])
    );
    let model = &paths["/v1/classify"]["post"]["parameters"][0];
    assert_eq!(model["name"], "model");
    assert_eq!(model["schema"]["enum"], json!(["classification"]));
}

#[test]
fn a_detector_exported_with_one_maps_output_still_serves_and_answers_alike() {
    // Detectors used to be exported with one `maps` output (heatmaps, offsets and sizes
    // stacked); they are now split into the three. The same weights exported both ways must
    // give the same boxes, and the old one lists its one output.
    let root = models().parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    for file in ["model.bpk", "model.json", "network.json", "config.toml"] {
        std::fs::copy(root.join("detection").join(file), run.join(file)).unwrap();
    }
    let mut card = exemplar_inference::ModelCard::read(&run.join("model.json")).unwrap();
    let [heatmaps, offsets, sizes] = card.outputs.as_slice() else {
        panic!("{:?}", card.outputs);
    };
    let channels: usize = [heatmaps, offsets, sizes]
        .iter()
        .map(|o| o.shape[1].parse::<usize>().unwrap())
        .sum();
    let mut maps = heatmaps.clone();
    maps.name = "maps".into();
    maps.shape[1] = channels.to_string();
    card.outputs = vec![maps];
    std::fs::write(run.join("model.json"), card.to_json()).unwrap();
    let served = dir.path().join("models");
    exemplar_export::export(&run, &served.join("detection-maps"), 2).unwrap();
    let split = models().join("detection");
    let copy = served.join("detection");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["model.onnx", "model.json"] {
        std::fs::copy(split.join(file), copy.join(file)).unwrap();
    }
    // As tiny_models does: every peak is a detection, so there are boxes to compare.
    let card_path = served.join("detection-maps/model.json");
    let mut card = exemplar_inference::ModelCard::read(&card_path).unwrap();
    let (exemplar_inference::card::TaskSpec::Detection(decoding), true) =
        (&mut card.task, card.outputs.len() == 1)
    else {
        panic!("{card:?}");
    };
    decoding.score_threshold = 0.0;
    std::fs::write(&card_path, card.to_json()).unwrap();

    let server = Server::start(&served, &[]);
    let names = |model: &str| -> Vec<Value> {
        let meta = server.get(&format!("/v2/models/{model}")).json();
        meta["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].clone())
            .collect()
    };
    assert_eq!(names("detection-maps"), [json!("maps")]);
    assert_eq!(
        names("detection"),
        [json!("heatmaps"), json!("offsets"), json!("sizes")]
    );
    let photo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../serve/assets/samples/scene.png"),
    )
    .unwrap();
    let detect = |model: &str| {
        let answer = server.request(
            "POST",
            &format!("/v1/detect?model={model}"),
            "image/png",
            &photo,
        );
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["detections"].clone()
    };
    let (old, new) = (detect("detection-maps"), detect("detection"));
    assert!(!new.as_array().unwrap().is_empty(), "no boxes to compare");
    assert_eq!(old, new);
}
