//! `serve`'s access control, through the binary: the API key, the CORS allow-list, the
//! per-client rate limit and HTTPS.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use exemplar_tests::{Server, tiny_models};

fn models() -> &'static Path {
    static MODELS: OnceLock<PathBuf> = OnceLock::new();
    MODELS.get_or_init(|| tiny_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("access-e2e")))
}

/// The test certificates' folder, and the flags that serve with them.
fn tls() -> (PathBuf, Vec<String>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let path = |file: &str| fixtures.join(file).to_string_lossy().into_owned();
    let flags = vec![
        "--tls-cert".into(),
        path("cert.pem"),
        "--tls-key".into(),
        path("key.pem"),
    ];
    (fixtures, flags)
}

fn error_of(answer: &exemplar_tests::Answer) -> String {
    answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_api_key_guards_every_route_but_the_health_checks() {
    let server = Server::start(models(), &["--api-key", "s3cret"]);
    for open in ["/v2/health/live", "/v2/health/ready"] {
        assert_eq!(server.get(open).status, 200, "{open}");
    }
    let get_with = |path: &str, authorization: &str| {
        server.request_with("GET", path, "", &[("Authorization", authorization)], b"")
    };
    for path in ["/v2/models/classification", "/metrics", "/v2", "/"] {
        let refused = server.get(path);
        assert_eq!(refused.status, 401, "{path}");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        assert!(error_of(&refused).contains("needs an API key"), "{path}");
        for wrong in ["Bearer s3cre", "Bearer s3cret!", "s3cret", "Basic czNjcmV0"] {
            assert_eq!(get_with(path, wrong).status, 401, "{path} with {wrong}");
        }
        assert_eq!(get_with(path, "Bearer s3cret").status, 200, "{path}");
    }
    // A refused upload is not read, decoded or queued: the answer is the same 401.
    let refused = server.request("POST", "/v1/classify", "image/png", b"not even an image");
    assert_eq!(refused.status, 401);
    assert!(refused.header("x-request-id").is_some());
}

#[test]
fn cross_origin_calls_only_from_listed_origins() {
    let server = Server::start(
        models(),
        &["--cors-origin", "https://app.example,https://lab.example"],
    );
    let preflight = |origin: &str| {
        server.request_with(
            "OPTIONS",
            "/v2/models/classification/infer",
            "",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "content-type,inference-header-content-length",
                ),
            ],
            b"",
        )
    };
    for allowed in ["https://app.example", "https://lab.example"] {
        let answer = preflight(allowed);
        assert_eq!(answer.status, 200, "{allowed}");
        assert_eq!(answer.header("access-control-allow-origin"), Some(allowed));
        let headers = answer
            .header("access-control-allow-headers")
            .unwrap_or_default();
        assert!(
            headers.contains("inference-header-content-length"),
            "{headers}"
        );
    }
    assert_eq!(
        preflight("https://evil.example").header("access-control-allow-origin"),
        None
    );
    let call = server.request_with("GET", "/v2", "", &[("Origin", "https://app.example")], b"");
    assert_eq!(call.status, 200);
    assert_eq!(
        call.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        call.header("access-control-expose-headers")
            .is_some_and(|h| h.contains("x-request-id"))
    );
    // Without --cors-origin no origin is allowed.
    let closed = Server::start(models(), &[]);
    let answer = closed.request_with("GET", "/v2", "", &[("Origin", "https://app.example")], b"");
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[test]
fn a_client_over_its_rate_gets_429_and_the_health_checks_stay_open() {
    // One a second with a burst of 3: the first three calls pass, the next are refused until
    // the allowance refills.
    let server = Server::start(models(), &["--rate-limit", "1", "--rate-burst", "3"]);
    let answers: Vec<_> = (0..8)
        .map(|_| server.get("/v2/models/classification"))
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    // Eight quick calls cannot all pass unless they took five seconds.
    let refused = answers
        .iter()
        .find(|a| a.status == 429)
        .unwrap_or_else(|| panic!("{statuses:?}"));
    assert!(error_of(refused).contains("the limit is 1 a second"));
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    for _ in 0..5 {
        assert_eq!(server.get("/v2/health/live").status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100 * retry));
    assert_eq!(server.get("/v2/models/classification").status, 200);
}

#[test]
fn https_with_a_certificate_and_a_clear_error_without_one() {
    let (fixtures, tls_flags) = tls();
    let flags: Vec<&str> = tls_flags.iter().map(String::as_str).collect();
    let server = Server::start(models(), &flags);

    // A client trusting the test CA completes the handshake and gets an answer.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(fixtures.join("ca.pem")).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(&ca).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(&server.addr).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("TLS handshake and request");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"live":true}"#), "{answer}");
    assert!(tls.conn.negotiated_cipher_suite().is_some());

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(&server.addr).unwrap();
    plain
        .write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // The container health check speaks TLS when the server is configured for it.
    let health = |tls: bool| {
        let mut command = exemplar_tests::binary("serve");
        command.args(["--health-check", "--addr", &server.addr]);
        if tls {
            command.args(&flags);
        }
        command.output().unwrap()
    };
    let healthy = health(true);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert_eq!(health(false).status.code(), Some(1));

    // A missing key file is a clear start-up error.
    let output = exemplar_tests::binary("serve")
        .arg("--models")
        .arg(models())
        .args(["--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(fixtures.join("cert.pem"))
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot use"), "{stderr}");
    assert!(stderr.contains("/nonexistent/key.pem"), "{stderr}");
}

#[test]
fn the_api_key_guards_grpc_too() {
    let server = Server::start(
        models(),
        &["--api-key", "s3cret", "--grpc-addr", "127.0.0.1:0"],
    );
    let grpc = server.grpc_addr.clone().expect("a gRPC address");
    let python = exemplar_tests::oip_client_python();
    // Triton's gRPC client, without the key and with it.
    let script = r#"
import sys
import tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
client = g.InferenceServerClient(sys.argv[1])
try:
    client.get_server_metadata()
    sys.exit("answered without the key")
except InferenceServerException as e:
    assert "needs an API key" in e.message(), e.message()
assert client.get_server_metadata(headers={"authorization": "Bearer s3cret"}).name == "exemplar-serve"
"#;
    exemplar_tests::succeed(std::process::Command::new(python).args(["-c", script, &grpc]));
}

#[test]
fn grpc_speaks_tls_and_keeps_the_rate_and_size_limits() {
    let (fixtures, tls_flags) = tls();
    let mut flags: Vec<&str> = tls_flags.iter().map(String::as_str).collect();
    flags.extend([
        "--grpc-addr",
        "127.0.0.1:0",
        "--rate-limit",
        "1",
        "--rate-burst",
        "3",
        "--max-body-bytes",
        "65536",
    ]);
    let server = Server::start(models(), &flags);
    let grpc = server.grpc_addr.clone().expect("a gRPC address");
    let python = exemplar_tests::oip_client_python();
    // Triton's gRPC client over TLS, trusting the test CA; health over the same TLS port; then a
    // request over the size limit; and plain text to the TLS port.
    let script = r#"
import sys, time
import grpc
import numpy as np
import tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
url, ca = sys.argv[1], sys.argv[2]
client = g.InferenceServerClient(url, ssl=True, root_certificates=ca)
codes = []
for _ in range(6):
    try:
        client.get_model_metadata("classification")
        codes.append("OK")
    except InferenceServerException as e:
        codes.append(e.status())
        refused = e
assert codes[:3] == ["OK"] * 3, codes
assert "StatusCode.RESOURCE_EXHAUSTED" in codes, codes
assert "the limit is 1 a second" in refused.message(), refused.message()
with open(ca, "rb") as f:
    channel = grpc.secure_channel(url, grpc.ssl_channel_credentials(f.read()))
health = channel.unary_unary("/grpc.health.v1.Health/Check",
                             request_serializer=bytes, response_deserializer=bytes)
for _ in range(5):
    assert health(b"") == b"\x08\x01", "SERVING"
time.sleep(3.2)
meta = client.get_model_metadata("classification")
name, (_, c, h, w) = meta.inputs[0].name, meta.inputs[0].shape
big = g.InferInput(name, [8, c, h, w], "FP32")
big.set_data_from_numpy(np.zeros((8, c, h, w), np.float32))
try:
    client.infer("classification", [big])
    sys.exit("a request over --max-body-bytes was answered")
except InferenceServerException as e:
    assert e.status() == "StatusCode.OUT_OF_RANGE", (e.status(), e.message())
time.sleep(1.1)
one = g.InferInput(name, [1, c, h, w], "FP32")
one.set_data_from_numpy(np.zeros((1, c, h, w), np.float32))
assert client.infer("classification", [one]).as_numpy(meta.outputs[0].name).shape[0] == 1
plain = g.InferenceServerClient(url)
try:
    plain.get_server_metadata(client_timeout=5)
    sys.exit("plain text was answered on the TLS port")
except InferenceServerException:
    pass
"#;
    let ca = fixtures.join("ca.pem");
    exemplar_tests::succeed(std::process::Command::new(python).args([
        "-c",
        script,
        &grpc,
        ca.to_str().unwrap(),
    ]));
}
