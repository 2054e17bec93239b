//! serve's batching workers and its ONNX Runtime seam, on a briefly trained and exported
//! classifier (the training stack is why these live here and not in serve, which links no burn).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use exemplar_inference::{InputDatatype, InputValues, ModelCard};
use exemplar_serve::metrics::Metrics;
use exemplar_serve::runtime::onnx::OnnxModel;
use exemplar_serve::runtime::{ModelInput, Placement, Runtime};
use exemplar_serve::worker::{BatchOptions, Worker, buckets};
use exemplar_train::finetune::classification::ClassificationTask;
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::{self, TaskKind};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};

/// A briefly fine-tuned classifier in `dir/run`, exported into `dir/model`: its folder and
/// card.
fn exported(dir: &Path) -> (PathBuf, ModelCard) {
    let run = dir.join("run");
    let mut config = FinetuneConfig::defaults(TaskKind::Classification);
    config.epochs = 1;
    config.synthetic.train_size = 32;
    config.synthetic.val_size = 8;
    finetune::finetune::<ClassificationTask>(config, &run, false).unwrap();
    export_as(dir, InputDatatype::Fp32)
}

/// The run of [`exported`] exported again with an input of `datatype`, into
/// `dir/model-<datatype>`.
fn export_as(dir: &Path, datatype: InputDatatype) -> (PathBuf, ModelCard) {
    let model = match datatype {
        InputDatatype::Fp32 => dir.join("model"),
        other => dir.join(format!("model-{other}")),
    };
    let options = exemplar_export::ExportOptions {
        parity_batch: 2,
        input_datatype: datatype,
    };
    exemplar_export::export_with(&dir.join("run"), &model, &options).unwrap();
    let card = ModelCard::read(&model.join("model.json")).unwrap();
    (model, card)
}

/// A CPU copy of the model in `model` (the folder `export` wrote).
fn open(model: &Path, input: &ModelInput) -> OnnxModel {
    OnnxModel::open_on_cpu(&model.join("model.onnx"), input.clone()).unwrap()
}

/// Images whose clients stopped waiting (the request's future dropped, as when the
/// connection closes) are taken off the queue without being computed.
#[test]
fn images_of_clients_that_left_are_not_computed() {
    let dir = tempfile::tempdir().unwrap();
    let (model, card) = exported(dir.path());
    let input = ModelInput::of(&card);
    let metrics = Arc::new(Metrics::default());
    let options = BatchOptions {
        max_batch: 1,
        max_delay: Duration::ZERO,
        queue: 32,
    };
    let instance: Box<dyn Runtime> = Box::new(open(&model, &input));
    let worker = Worker::spawn(
        "m",
        vec![instance],
        Placement::Cpu,
        options,
        Arc::clone(&metrics),
    )
    .unwrap();
    let image = InputValues::Fp32(vec![0.25; input.per_image()]);
    // Nineteen clients leave as soon as their image is queued; the twentieth waits.
    for _ in 0..19 {
        drop(worker.submit(image.clone()).unwrap());
    }
    let last = worker.submit(image.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let output = runtime.block_on(last.wait()).unwrap().unwrap();
    assert_eq!(output[0].values.len(), card.class_names.len());
    // Only the waiting client's image ran (the batch-size histogram counts the calls made),
    // give or take one taken in the instant between a submit and its drop.
    let text = metrics.render();
    let calls: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("exemplar_batch_size_count{model=\"m\"} "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(calls <= 2, "{calls} calls for 1 waiting image: {text}");
    let canceled: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("exemplar_inference_failure_total{model=\"m\",reason=\"canceled\"} ")
        })
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(
        canceled >= 18,
        "{canceled} images counted as canceled: {text}"
    );
}

/// The bound path (here in plain host memory; on CUDA in page-locked memory) pads a batch to
/// its bucket and must answer each image exactly as a plain call of the batch does, in each
/// input datatype; an image of another datatype is an error, not a crash.
#[test]
fn padded_bound_batches_answer_like_plain_calls() {
    let dir = tempfile::tempdir().unwrap();
    exported(dir.path());
    for datatype in InputDatatype::ALL {
        padded_bound_batches_in(dir.path(), datatype);
    }
}

fn padded_bound_batches_in(dir: &Path, datatype: InputDatatype) {
    let (model, card) = export_as(dir, datatype);
    let input = ModelInput::of(&card);
    let mut plain = open(&model, &input);
    let mut bound = open(&model, &input);
    bound
        .bind_with(&buckets(6), |_| {
            MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            )
        })
        .unwrap();
    assert_eq!(bound.bound_sizes(), [1, 2, 4, 6]);
    let image = |k: usize| {
        let pattern = (0..input.per_image()).map(|i| (i * 7 + k * 13) % 17);
        match datatype {
            InputDatatype::Uint8 => InputValues::Uint8(pattern.map(|v| v as u8 * 15).collect()),
            _ => {
                let values = pattern.map(|v| v as f64 / 17.0 - 0.5).collect::<Vec<_>>();
                InputValues::from_numbers(datatype, &values).unwrap()
            }
        }
    };
    // 6 then 3: the second batch is padded with what the first left in the staging buffer.
    for n in [6, 3, 1, 5] {
        let inputs: Vec<InputValues> = (0..n).map(|k| image(k + n)).collect();
        let expected = plain.infer_plain(&inputs).unwrap();
        let got = bound.infer_bound(&inputs).unwrap();
        assert_eq!(got.len(), n);
        for (g, e) in got.iter().flatten().zip(expected.iter().flatten()) {
            assert_eq!(g.shape, e.shape);
            for (a, b) in g.values.iter().zip(&e.values) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{a} vs {b} at batch {n}"
                );
            }
        }
    }
    // A batch larger than every bucket (not produced by the worker) still gets answered.
    let inputs: Vec<InputValues> = (0..7).map(image).collect();
    assert_eq!(bound.infer_bound(&inputs).unwrap().len(), 7);
    let other = match datatype {
        InputDatatype::Uint8 => InputDatatype::Fp16,
        _ => InputDatatype::Uint8,
    };
    let wrong = [InputValues::zeros(other, input.per_image())];
    let error = bound.infer_bound(&wrong).unwrap_err();
    assert!(
        error.contains(&format!("the model takes {datatype}")),
        "{error}"
    );
    let error = plain.infer_plain(&wrong).unwrap_err();
    assert!(
        error.contains(&format!("the model takes {datatype}")),
        "{error}"
    );
}
