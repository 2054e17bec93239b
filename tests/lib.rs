//! End-to-end tests of the workspace's binaries, run as a user would run them.
//!
//! The binaries are found beside the test executable (`target/<profile>/`), where
//! `cargo test --workspace` builds them.

use std::path::PathBuf;
use std::process::Command;

pub mod browser;
mod models;

pub use models::tiny_models;

/// A command for the workspace binary `name` (`train`, `export`, `serve`).
///
/// # Panics
/// If the binary has not been built (run the tests with `cargo test --workspace`).
pub fn binary(name: &str) -> Command {
    Command::new(binary_path(name))
}

/// Runs the workspace binary `name` with `args` and returns its stdout.
///
/// # Panics
/// If it fails; the message holds its stderr.
pub fn run(name: &str, args: &[&str]) -> String {
    let output = succeed(binary(name).args(args));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `command` to its end and returns what it wrote.
///
/// # Panics
/// If it cannot start or fails; the message names it and holds its stderr.
pub fn succeed(command: &mut Command) -> std::process::Output {
    let output = command.output().expect("spawn");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Where the workspace binary `name` is.
///
/// # Panics
/// If it has not been built (run the tests with `cargo test --workspace`).
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path: PathBuf = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// The Python of the protocol clients' virtual environment (`scripts/install-oip-client.sh`:
/// Triton's clients and an OpenAPI validator).
///
/// # Panics
/// If it is not installed.
pub fn oip_client_python() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".runtime/oip-client/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-oip-client.sh (Triton's client from PyPI)",
        python.display()
    );
    python
}

/// Starts `serve` on `models` with gRPC on, and runs Triton's clients
/// (`tests/oip-client/check.py`) against each of `names` over HTTP and gRPC: health, metadata,
/// JSON and binary inference in the model's input datatype, and the error cases.
///
/// # Panics
/// If the check fails for a model; the message holds what the script printed.
pub fn check_with_tritons_clients(models: &std::path::Path, names: &[&str]) {
    let python = oip_client_python();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("oip-client/check.py");
    let server = Server::start(models, &["--grpc-addr", "127.0.0.1:0"]);
    let grpc = server.grpc_addr.clone().expect("a gRPC address");
    for model in names {
        let output = Command::new(&python)
            .arg(&script)
            .args(["--url", &server.addr, "--model", model, "--grpc-url", &grpc])
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "{model}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A running `serve` binary on a free loopback port, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// `host:port` of its gRPC service, when started with `--grpc-addr`.
    pub grpc_addr: Option<String>,
}

/// An HTTP answer: status, `Content-Type`, the other headers and body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    /// Every header, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Server {
    /// Starts `serve --models DIR --addr 127.0.0.1:0 EXTRA...` and waits for its first line,
    /// which names the address it bound (`http://` or, with TLS, `https://`).
    ///
    /// # Panics
    /// If the server exits or prints something else first.
    pub fn start(models: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_logging(models, extra, std::process::Stdio::inherit())
    }

    /// [`Server::start`], with the server's log (its stderr) going to `log`.
    pub fn start_logging(
        models: &std::path::Path,
        extra: &[&str],
        log: impl Into<std::process::Stdio>,
    ) -> Self {
        use std::io::BufRead;
        let mut child = binary("serve")
            .arg("--models")
            .arg(models)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stdout = std::io::BufReader::new(stdout);
        stdout
            .read_line(&mut line)
            .expect("serve prints its address");
        let addr = line
            .trim()
            .strip_prefix("serve: listening on ")
            .and_then(|url| {
                url.strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"))
            })
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
            .to_string();
        let grpc_addr = extra.contains(&"--grpc-addr").then(|| {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("serve prints its gRPC address");
            line.trim()
                .strip_prefix("serve: gRPC on ")
                .unwrap_or_else(|| panic!("unexpected second line from serve: {line:?}"))
                .to_string()
        });
        Self {
            child,
            addr,
            grpc_addr,
        }
    }

    /// One HTTP/1.1 request with a body of `content_type` (none when empty).
    ///
    /// # Panics
    /// If no HTTP answer comes back.
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
        self.request_with(method, path, content_type, &[], body)
    }

    /// [`Server::request`] with extra request headers.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect to serve");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // An oversized body may be refused before it is all sent: read the answer regardless.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(body));
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no HTTP answer to {method} {path}: {}",
                    String::from_utf8_lossy(&raw)
                )
            });
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head}"));
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
            })
            .collect();
        let content_type = headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut body = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Answer {
            status,
            content_type,
            headers,
            body,
        }
    }

    /// A request whose body is an image (or anything sent as one).
    pub fn post_image(&self, path: &str, image: &[u8]) -> Answer {
        self.request("POST", path, "image/png", image)
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, "", b"")
    }
}

impl Server {
    /// Stops the server as a container runtime does (SIGTERM) and waits for it to exit.
    ///
    /// # Panics
    /// If the signal cannot be sent.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM failed");
        self.child.wait().expect("serve's exit status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a `Transfer-Encoding: chunked` answer, reassembled.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        body.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    body
}

/// A `multipart/form-data` body with the given `(name, file name, bytes)` parts, and its
/// content type.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "exemplar-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A JSON array of numbers, as `f32`s.
///
/// # Panics
/// If it is anything else.
pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// What the bare network outputs for `image`, through the Open Inference Protocol: the image
/// pre-processed as the card says, sent as a JSON tensor; several outputs come back joined along the
/// channels.
///
/// # Panics
/// If the server does not answer with the card's outputs.
pub fn raw_output(
    server: &Server,
    models: &std::path::Path,
    model: &str,
    image: &[u8],
) -> (exemplar_inference::ModelCard, Vec<f32>, Vec<usize>) {
    let card = exemplar_inference::ModelCard::read(&models.join(model).join("model.json")).unwrap();
    let decoded = exemplar_inference::image::decode_bytes(image).unwrap();
    let size = [card.input.width, card.input.height];
    let mut pixels = Vec::new();
    exemplar_inference::image::preprocess(&decoded, size, &card.input.normalization, &mut pixels);
    let request = serde_json::json!({
        "id": "42",
        "inputs": [{"name": card.input.name, "shape": [1, 3, size[1], size[0]], "datatype": "FP32", "data": pixels}],
    });
    let answer = server.request(
        "POST",
        &format!("/v2/models/{model}/infer"),
        "application/json",
        request.to_string().as_bytes(),
    );
    let answer_json = answer.json();
    assert_eq!(answer.status, 200, "{answer_json}");
    assert_eq!(answer_json["id"], "42");
    // Several outputs (a detector's heatmaps, offsets, sizes) are joined along the channels;
    // with one image that is their data end to end.
    let outputs = answer_json["outputs"].as_array().unwrap();
    let names: Vec<&str> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    let card_names: Vec<&str> = card.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, card_names);
    let mut shape: Vec<usize> = Vec::new();
    let mut data = Vec::new();
    for output in outputs {
        assert_eq!(output["datatype"], "FP32");
        let dims: Vec<usize> = output["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        match shape.is_empty() {
            true => shape = dims,
            false => shape[1] += dims[1],
        }
        data.extend(floats(&output["data"]));
    }
    (card, data, shape)
}
