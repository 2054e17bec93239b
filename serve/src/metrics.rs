//! Prometheus metrics through the `metrics` crate's Prometheus exporter, which renders the text
//! format and escapes label values. The series follow Triton's per-model statistics:
//!
//! - HTTP: `exemplar_requests_total{endpoint,status}` and `exemplar_request_seconds{endpoint}`;
//! - per model: requests answered (`exemplar_inference_success_total`) and failed, by reason
//!   (`exemplar_inference_failure_total{reason}`: `rejected` by a full queue, `canceled` by a
//!   client gone before its turn, `backend` when ONNX Runtime failed); images inferred
//!   (`exemplar_inference_count_total`) against ONNX Runtime calls
//!   (`exemplar_inference_exec_count_total`); the time an image waits
//!   (`exemplar_queue_seconds`), the time a call computes (`exemplar_compute_seconds`), both for
//!   each image (`exemplar_inference_seconds`); and images per call (`exemplar_batch_size`).

use std::time::Duration;

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Upper bounds (seconds) of the duration histograms.
const SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds of the batch-size histogram.
const BATCH: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// Why an image got no output.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// The model's queue was full.
    Rejected,
    /// Its client went away before the image's turn.
    Canceled,
    /// ONNX Runtime failed on its batch.
    Backend,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::Rejected => "rejected",
            Failure::Canceled => "canceled",
            Failure::Backend => "backend",
        }
    }
}

/// One ONNX Runtime call of a model's worker.
pub struct Execution<'a> {
    /// How long each image of the batch waited in the queue.
    pub waits: &'a [Duration],
    /// How long the call took.
    pub compute: Duration,
    /// Whether it failed (every image of it then fails).
    pub failed: bool,
}

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("exemplar_batch_size".into()), &BATCH)
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_histogram(KeyName::from_const_str(name), unit, help.into());
        };
        describe(
            "exemplar_request_seconds",
            Some(Unit::Seconds),
            "HTTP request latency by endpoint.",
        );
        describe(
            "exemplar_queue_seconds",
            Some(Unit::Seconds),
            "Time an image waited for its model's worker.",
        );
        describe(
            "exemplar_compute_seconds",
            Some(Unit::Seconds),
            "Time one ONNX Runtime call took.",
        );
        describe(
            "exemplar_inference_seconds",
            Some(Unit::Seconds),
            "Queue plus compute time of each image.",
        );
        describe(
            "exemplar_batch_size",
            Some(Unit::Count),
            "Images per ONNX Runtime call.",
        );
        let counters = [
            (
                "exemplar_requests_total",
                "HTTP requests by endpoint and status.",
            ),
            (
                "exemplar_inference_success_total",
                "Images a model answered.",
            ),
            (
                "exemplar_inference_failure_total",
                "Images a model did not answer, by reason.",
            ),
            (
                "exemplar_inference_count_total",
                "Images inferred (each image of a batch).",
            ),
            (
                "exemplar_inference_exec_count_total",
                "ONNX Runtime calls (batches).",
            ),
        ];
        for (name, help) in counters {
            recorder.describe_counter(KeyName::from_const_str(name), None, help.into());
        }
        let handle = recorder.handle();
        Self { recorder, handle }
    }

    fn count(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        let key = Key::from_parts(name, labels);
        self.recorder
            .register_counter(&key, &METADATA)
            .increment(by);
    }

    fn observe(
        &self,
        name: &'static str,
        labels: Vec<Label>,
        values: impl IntoIterator<Item = f64>,
    ) {
        let key = Key::from_parts(name, labels);
        let histogram = self.recorder.register_histogram(&key, &METADATA);
        values.into_iter().for_each(|v| histogram.record(v));
    }

    /// An HTTP request's endpoint (route), status and latency.
    pub fn request(&self, endpoint: &str, status: u16, latency: Duration) {
        let endpoint = Label::new("endpoint", endpoint.to_string());
        let status = Label::new("status", status.to_string());
        self.count("exemplar_requests_total", vec![endpoint.clone(), status], 1);
        self.observe(
            "exemplar_request_seconds",
            vec![endpoint],
            [latency.as_secs_f64()],
        );
    }

    /// One ONNX Runtime call of `model`'s worker.
    pub fn execution(&self, model: &str, run: &Execution) {
        let model_label = || vec![Label::new("model", model.to_string())];
        let images = run.waits.len() as u64;
        self.count("exemplar_inference_exec_count_total", model_label(), 1);
        self.observe("exemplar_batch_size", model_label(), [images as f64]);
        self.observe(
            "exemplar_queue_seconds",
            model_label(),
            run.waits.iter().map(Duration::as_secs_f64),
        );
        self.observe(
            "exemplar_compute_seconds",
            model_label(),
            [run.compute.as_secs_f64()],
        );
        self.observe(
            "exemplar_inference_seconds",
            model_label(),
            run.waits
                .iter()
                .map(|wait| (*wait + run.compute).as_secs_f64()),
        );
        if run.failed {
            self.failure(model, Failure::Backend, images);
        } else {
            self.count("exemplar_inference_count_total", model_label(), images);
            self.count("exemplar_inference_success_total", model_label(), images);
        }
    }

    /// `images` of `model` that got no output, and why.
    pub fn failure(&self, model: &str, reason: Failure, images: u64) {
        let labels = vec![
            Label::new("model", model.to_string()),
            Label::new("reason", reason.name()),
        ];
        self.count("exemplar_inference_failure_total", labels, images);
    }

    /// Folds recorded histogram samples into their buckets. The server runs it every few
    /// seconds, so that memory stays flat when nothing scrapes `/metrics`.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triton_like_series_render_in_prometheus_text_format() {
        let m = Metrics::new();
        m.request("/v1/detect", 200, Duration::from_millis(3));
        m.request("/v1/detect", 400, Duration::from_millis(30));
        let waits = [Duration::from_millis(1), Duration::from_millis(2)];
        m.execution(
            "det",
            &Execution {
                waits: &waits,
                compute: Duration::from_millis(4),
                failed: false,
            },
        );
        m.execution(
            "det",
            &Execution {
                waits: &waits[..1],
                compute: Duration::from_millis(4),
                failed: true,
            },
        );
        m.failure("det", Failure::Rejected, 1);
        // A label value with a quote, a backslash and a newline is escaped.
        m.failure("a\"b\\c\nd", Failure::Canceled, 1);
        let text = m.render();
        for line in [
            "exemplar_requests_total{endpoint=\"/v1/detect\",status=\"200\"} 1",
            "exemplar_request_seconds_bucket{endpoint=\"/v1/detect\",le=\"0.005\"} 1",
            "exemplar_request_seconds_count{endpoint=\"/v1/detect\"} 2",
            "exemplar_batch_size_bucket{model=\"det\",le=\"2\"} 2",
            "exemplar_queue_seconds_count{model=\"det\"} 3",
            "exemplar_compute_seconds_count{model=\"det\"} 2",
            "exemplar_inference_seconds_bucket{model=\"det\",le=\"0.005\"} 2",
            "exemplar_inference_exec_count_total{model=\"det\"} 2",
            "exemplar_inference_count_total{model=\"det\"} 2",
            "exemplar_inference_success_total{model=\"det\"} 2",
            "exemplar_inference_failure_total{model=\"det\",reason=\"backend\"} 1",
            "exemplar_inference_failure_total{model=\"det\",reason=\"rejected\"} 1",
            "exemplar_inference_failure_total{model=\"a\\\"b\\\\c\\nd\",reason=\"canceled\"} 1",
            "# TYPE exemplar_queue_seconds histogram",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
