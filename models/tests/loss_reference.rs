//! The loss and its gradient against float64 values computed independently in
//! `data/loss_reference.py` (which checks its own gradient by finite differences).

use burn::tensor::{Device, Int, Tensor, TensorData};
use exemplar_models::contrastive_loss;
use serde_json::Value;

const TOLERANCE: f64 = 1e-5;

fn matrix(value: &Value, device: &Device) -> Tensor<2> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(value.clone()).expect("matrix");
    let (n, d) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.into_iter().flatten().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [n, d]), device)
}

fn labels(value: &Value, device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = serde_json::from_value(value.clone()).expect("labels");
    let n = labels.len();
    Tensor::from_data(TensorData::new(labels, [n]), device)
}

fn assert_close(name: &str, what: &str, actual: &[f32], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{name}: {what} length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let scale = e.abs().max(1.0);
        assert!(
            (*a as f64 - e).abs() <= TOLERANCE * scale,
            "{name}: {what}[{i}] = {a}, reference {e}"
        );
    }
}

#[test]
fn loss_and_gradient_match_float64_reference() {
    let reference: Value =
        serde_json::from_str(include_str!("data/loss_reference.json")).expect("reference json");
    let cases = reference["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    let device = Device::flex().autodiff();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let query = matrix(&case["query"], &device).require_grad();
        let positive = matrix(&case["positive"], &device);
        let queue = matrix(&case["queue"], &device);
        let label_pair = (!case["labels"].is_null()).then(|| {
            (
                labels(&case["labels"], &device),
                labels(&case["queue_labels"], &device),
            )
        });
        let temperature = case["temperature"].as_f64().expect("temperature");

        let out = contrastive_loss(query.clone(), positive, queue, label_pair, temperature);
        let loss = out
            .loss
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("loss");
        assert_close(name, "loss", &loss, &[case["loss"].as_f64().expect("loss")]);

        let grads = out.loss.backward();
        let grad = query.grad(&grads).expect("query gradient");
        let expected: Vec<f64> =
            serde_json::from_value::<Vec<Vec<f64>>>(case["grad_query"].clone())
                .expect("grad")
                .into_iter()
                .flatten()
                .collect();
        assert_close(
            name,
            "grad",
            &grad.into_data().try_to_vec::<f32>().expect("grad"),
            &expected,
        );
    }
}

#[test]
fn masking_removes_exactly_the_same_class_negatives() {
    let device = Device::flex();
    let query = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]),
        &device,
    );
    let queue = query.clone();
    let query_labels = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, -1], [2]), &device);
    let queue_labels = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, -1], [2]), &device);
    let out = contrastive_loss(
        query.clone(),
        query,
        queue,
        Some((query_labels, queue_labels)),
        0.2,
    );
    let mask = out
        .mask
        .expect("exemplar has a mask")
        .into_data()
        .try_to_vec::<bool>()
        .expect("bool mask");
    // Row 0 (class 3) masks queue entry 0 (class 3) only; the unlabelled row 1 masks nothing,
    // not even the unlabelled queue slot.
    assert_eq!(mask, vec![true, false, false, false]);
}
