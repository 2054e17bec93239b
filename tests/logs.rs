//! What `serve` tells its operator: `x-request-id` on every answer (the client's own or a new
//! one), one access-log line per request (route, model, status, duration, request id) including
//! requests refused before any handler ran, and both log formats.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exemplar_tests::{Server, tiny_models};
use serde_json::Value;

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("logs-e2e")))
}

fn scene() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../serve/assets/samples/scene.png");
    std::fs::read(path).unwrap()
}

/// Starts `serve EXTRA...` logging into a file, runs `requests` against it, stops it and returns
/// its log lines.
fn log_of(extra: &[&str], requests: impl FnOnce(&Server)) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.log");
    let file = std::fs::File::create(&path).unwrap();
    let server = Server::start_logging(models(), extra, file);
    requests(&server);
    drop(server);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_request_has_an_id_and_a_json_access_line() {
    let mut fresh_id = String::new();
    let lines = log_of(
        &["--log-format", "json", "--max-body-bytes", "100000"],
        |server| {
            let answer = server.request_with(
                "POST",
                "/v1/classify",
                "image/png",
                &[("x-request-id", "client-id-7")],
                &scene(),
            );
            assert_eq!(answer.status, 200);
            assert_eq!(answer.header("x-request-id"), Some("client-id-7"));
            let answer = server.get("/v2/models/nope");
            assert_eq!(answer.status, 404);
            fresh_id = answer
                .header("x-request-id")
                .unwrap_or_default()
                .to_string();
            // Refused by the body limit, before any handler.
            let answer = server.post_image("/v1/detect", &vec![0u8; 200_000]);
            assert_eq!(answer.status, 413);
        },
    );
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let loaded: Vec<&str> = records
        .iter()
        .filter(|r| r["message"] == "model loaded")
        .filter_map(|r| r["model"].as_str())
        .collect();
    assert_eq!(
        loaded,
        [
            "backbone",
            "classification",
            "detection",
            "landmarks",
            "segmentation"
        ]
    );
    let access = |id: &str| {
        records
            .iter()
            .find(|r| r["message"] == "request" && r["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}: {lines:?}"))
    };
    let classify = access("client-id-7");
    assert_eq!(classify["route"], "/v1/classify");
    assert_eq!(classify["method"], "POST");
    assert_eq!(classify["model"], "classification");
    assert_eq!(classify["status"], 200);
    assert!(
        classify["duration_ms"].as_f64().unwrap() > 0.0,
        "{classify}"
    );
    // A new id is a UUID.
    assert_eq!(fresh_id.len(), 36, "{fresh_id}");
    let missing = access(&fresh_id);
    assert_eq!(missing["route"], "/v2/models/{name}");
    assert_eq!(missing["status"], 404);
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "request" && r["status"] == 413)
        .collect();
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["path"], "/v1/detect");
}

#[test]
fn the_human_format_is_one_readable_line_per_event() {
    let lines = log_of(&[], |server| {
        assert_eq!(server.get("/v2/health/ready").status, 200);
    });
    let access = lines
        .iter()
        .find(|l| l.contains(" request ") && l.contains("route=\"/v2/health/ready\""))
        .unwrap_or_else(|| panic!("no access line: {lines:?}"));
    assert!(access.contains(" INFO "), "{access}");
    assert!(access.contains("status=200"), "{access}");
    assert!(
        !access.contains('\u{1b}'),
        "colour codes in a log file: {access}"
    );
    assert!(lines.iter().all(|l| !l.starts_with('{')), "{lines:?}");
}

/// With `--otlp-endpoint`, every HTTP and gRPC request becomes a span sent to the collector,
/// continuing the caller's W3C trace; the last spans are sent when the server stops on SIGTERM.
#[test]
fn spans_reach_an_otlp_collector_and_join_the_callers_trace() {
    let python = exemplar_tests::oip_client_python();
    let dir = tempfile::tempdir().unwrap();
    let spans = dir.path().join("spans.hex");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oip-client/otlp_collector.py");
    let mut collector = std::process::Command::new(&python)
        .arg(&script)
        .arg(&spans)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(collector.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", port.trim());

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (http_parent, grpc_parent) = ("00f067aa0ba902b7", "a3ce929d0e0e4736");
    let server = Server::start(
        models(),
        &["--otlp-endpoint", &endpoint, "--grpc-addr", "127.0.0.1:0"],
    );
    let traceparent = format!("00-{trace}-{http_parent}-01");
    let answer = server.request_with(
        "GET",
        "/v2/models/classification",
        "",
        &[("traceparent", &traceparent)],
        b"",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(server.post_image("/v1/classify", &scene()).status, 200);
    let grpc = server.grpc_addr.clone().unwrap();
    let call = format!(
        "import tritonclient.grpc as g; g.InferenceServerClient('{grpc}')\
         .get_server_metadata(headers={{'traceparent': '00-{trace}-{grpc_parent}-01'}})"
    );
    exemplar_tests::succeed(std::process::Command::new(&python).args(["-c", &call]));
    assert!(server.terminate().success());
    let _ = collector.kill();
    let _ = collector.wait();

    let exported = std::fs::read_to_string(&spans).unwrap_or_default();
    let bytes: Vec<u8> = exported
        .lines()
        .flat_map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let raw = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    assert!(holds(b"exemplar-serve"), "no service name in {exported:?}");
    assert!(holds(b"GET /v2/models/{name}"), "no HTTP span");
    assert!(
        holds(b"inference.GRPCInferenceService/ServerMetadata"),
        "no gRPC span"
    );
    assert!(holds(b"POST /v1/classify"), "no span of the classify call");
    assert!(holds(b"classification"), "the classify span names no model");
    assert!(holds(&raw(trace)), "the spans left the caller's trace");
    assert!(
        holds(&raw(http_parent)) && holds(&raw(grpc_parent)),
        "no parent span ids"
    );
}
