//! `GET /openapi.json`: the API described in OpenAPI 3.1, which the API page (`/docs`) renders.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::api::AppState;

/// `GET /openapi.json`: the API described in OpenAPI 3.1.
pub async fn openapi(State(registry): State<AppState>) -> Json<Value> {
    let models: Vec<&String> = registry.models.keys().collect();
    let image_endpoint = |summary: &str, task: &str| {
        json!({
            "post": {
                "summary": summary,
                "parameters": [
                    {"name": "model", "in": "query", "required": false, "schema": {"type": "string", "enum": models},
                     "description": format!("a {task} model; optional when only one is loaded")},
                ],
                "requestBody": {"required": true, "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {
                        "type": "object",
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "model": {"type": "string", "description": "the same as ?model="},
                        },
                        "required": ["image"],
                    }},
                }},
                "responses": {
                    "200": {"description": "the result, in the submitted image's pixels", "content": {"application/json": {}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"},
                    "415": {"$ref": "#/components/responses/Error"},
                    "503": {"$ref": "#/components/responses/Error"},
                },
            }
        })
    };
    let mut segment = image_endpoint(
        "Semantic segmentation: a PNG of class indices (or per-class COCO RLE with format=rle)",
        "segmentation",
    );
    segment["post"]["parameters"].as_array_mut().expect("array").push(json!(
        {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["png", "rle"]}}
    ));
    let mut detect = image_endpoint(
        "Detection: COCO-style boxes [x, y, w, h] with scores and class names",
        "detection",
    );
    detect["post"]["parameters"].as_array_mut().expect("array").push(json!(
        {"name": "score_threshold", "in": "query", "required": false, "schema": {"type": "number", "minimum": 0, "maximum": 1},
         "description": "drop detections scoring below this (default: the model card's threshold)"}
    ));
    let mut classify = image_endpoint(
        "Classification: the top-k classes with softmax scores",
        "classification",
    );
    classify["post"]["parameters"].as_array_mut().expect("array").push(json!(
        {"name": "top_k", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "default": 5}}
    ));
    let infer = json!({"post": {
        "summary": "Open Inference Protocol inference on FP32 tensors (no pre- or post-processing)",
        "description": "JSON, or with the binary tensor data extension: a JSON header of Inference-Header-Content-Length bytes followed by the tensors' little-endian bytes",
        "parameters": [
            {"name": "Inference-Header-Content-Length", "in": "header", "required": false, "schema": {"type": "integer", "minimum": 0},
             "description": "bytes of the JSON header when binary tensor data follows it"},
        ],
        "requestBody": {"required": true, "content": {
            "application/json": {},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }},
        "responses": {
            "200": {"description": "output tensors: JSON, or a JSON header (its length in Inference-Header-Content-Length) and binary data",
                    "content": {"application/json": {}, "application/octet-stream": {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "415": {"$ref": "#/components/responses/Error"},
        },
    }});
    let page = |summary: &str| json!({"get": {"summary": summary, "responses": {"200": {"description": "an HTML page", "content": {"text/html": {}}}}}});
    let get = |summary: &str| json!({"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}});
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "exemplar-serve", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/v1/detect": detect,
            "/v1/segment": segment,
            "/v1/landmarks": image_endpoint("Facial landmarks: named (x, y) points", "landmarks"),
            "/v1/embed": image_endpoint("Embedding: pooled backbone features", "embedding"),
            "/v1/classify": classify,
            "/v2": get("Open Inference Protocol server metadata"),
            "/v2/health/live": get("Liveness"),
            "/v2/health/ready": get("Readiness"),
            "/v2/models/{name}": get("Model metadata, with the model card"),
            "/v2/models/{name}/ready": get("Model readiness"),
            "/v2/models/{name}/infer": infer.clone(),
            "/v2/models/{name}/versions/{version}": get("Model metadata of a version (every model has version 1)"),
            "/v2/models/{name}/versions/{version}/ready": get("Readiness of a model version"),
            "/v2/models/{name}/versions/{version}/infer": infer,
            "/metrics": get("Prometheus metrics"),
            "/": page("The demo page: pick a model, drop an image, see the result drawn"),
            "/docs": page("This API, as a page to read and try"),
        },
        "components": {"responses": {"Error": {
            "description": "what was wrong",
            "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}},
        }}},
    }))
}
