//! The Open Inference Protocol's versioned model routes (`/v2/models/{m}/versions/{v}/…`): every
//! model has version 1, which answers as the unversioned route does; any other version is 404.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exemplar_tests::{Server, tiny_models};
use serde_json::{Value, json};

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("oip-e2e")))
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
