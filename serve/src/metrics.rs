//! Prometheus metrics: requests by endpoint and status, request latency, time images wait for
//! their model's worker, and the sizes of the batches the workers run.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency and queue-time histograms.
const SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds of the batch-size histogram.
const BATCH: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len()];
        }
        for (bucket, bound) in self.buckets.iter_mut().zip(bounds) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    queue: BTreeMap<String, Histogram>,
    batch: BTreeMap<String, Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic elsewhere while holding the lock must not take the metrics down with it.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    pub fn request(&self, endpoint: &str, status: u16, latency: Duration) {
        self.with(|s| {
            *s.requests
                .entry((endpoint.to_string(), status))
                .or_default() += 1;
            s.latency
                .entry(endpoint.to_string())
                .or_default()
                .observe(&SECONDS, latency.as_secs_f64());
        });
    }

    /// A batch run by `model`'s worker, and how long each of its images waited.
    pub fn batch(&self, model: &str, waits: &[Duration]) {
        self.with(|s| {
            s.batch
                .entry(model.to_string())
                .or_default()
                .observe(&BATCH, waits.len() as f64);
            let queue = s.queue.entry(model.to_string()).or_default();
            for wait in waits {
                queue.observe(&SECONDS, wait.as_secs_f64());
            }
        });
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.with(|s| {
            let mut out = String::new();
            out.push_str("# HELP exemplar_requests_total HTTP requests by endpoint and status.\n");
            out.push_str("# TYPE exemplar_requests_total counter\n");
            for ((endpoint, status), count) in &s.requests {
                let _ = writeln!(
                    out,
                    "exemplar_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                );
            }
            out.push_str("# HELP exemplar_request_seconds Request latency by endpoint.\n");
            out.push_str("# TYPE exemplar_request_seconds histogram\n");
            for (endpoint, h) in &s.latency {
                h.write(
                    &mut out,
                    "exemplar_request_seconds",
                    &format!("endpoint=\"{endpoint}\""),
                    &SECONDS,
                );
            }
            out.push_str(
                "# HELP exemplar_queue_seconds Time an image waited for its model's worker.\n",
            );
            out.push_str("# TYPE exemplar_queue_seconds histogram\n");
            for (model, h) in &s.queue {
                h.write(
                    &mut out,
                    "exemplar_queue_seconds",
                    &format!("model=\"{model}\""),
                    &SECONDS,
                );
            }
            out.push_str("# HELP exemplar_batch_size Images per ONNX Runtime call.\n");
            out.push_str("# TYPE exemplar_batch_size histogram\n");
            for (model, h) in &s.batch {
                h.write(
                    &mut out,
                    "exemplar_batch_size",
                    &format!("model=\"{model}\""),
                    &BATCH,
                );
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.request("/v1/detect", 200, Duration::from_millis(3));
        m.request("/v1/detect", 400, Duration::from_millis(30));
        m.batch("det", &[Duration::from_millis(1), Duration::from_millis(2)]);
        let text = m.render();
        assert!(text.contains("exemplar_requests_total{endpoint=\"/v1/detect\",status=\"200\"} 1"));
        assert!(
            text.contains(
                "exemplar_request_seconds_bucket{endpoint=\"/v1/detect\",le=\"0.005\"} 1"
            )
        );
        assert!(text.contains("exemplar_request_seconds_count{endpoint=\"/v1/detect\"} 2"));
        assert!(text.contains("exemplar_batch_size_bucket{model=\"det\",le=\"2\"} 1"));
        assert!(text.contains("exemplar_queue_seconds_count{model=\"det\"} 2"));
    }
}
