//! The tiny models the serving tests serve: trained and exported through the binaries, as a
//! user would, in a few seconds each.

use std::path::{Path, PathBuf};

use exemplar_inference::ModelCard;
use exemplar_inference::card::TaskSpec;

use crate::run;

/// Trains a tiny Exemplar-v2 backbone (16 px, width 1/16), fine-tunes the four task heads on it
/// and exports all five models into `root/models` (`backbone`, `detection`, `segmentation`,
/// `landmarks`, `classification`), replacing what was in `root`. Each test binary passes its
/// own directory.
///
/// A barely trained detector scores below the default threshold everywhere, so the detection
/// card's threshold is set to 0: every peak is a detection, and the tests have boxes to check.
///
/// # Panics
/// If a binary fails.
pub fn tiny_models(root: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(root);
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    let tiny = [
        "--synthetic-train-size",
        "32",
        "--synthetic-val-size",
        "16",
        "--batch-size",
        "16",
        "--epochs",
        "1",
    ];
    let mut pretrain = vec!["pretrain", "--method", "exemplar-v2", "--arch", "resnet18"];
    pretrain.extend(["--width", "0.0625", "--stem", "small", "--image-size", "16"]);
    pretrain.extend(["--queue-size", "64", "--knn-k", "5"]);
    pretrain.extend(tiny);
    let pretrained = path("pretrain");
    pretrain.extend(["--out", &pretrained]);
    run("train", &pretrain);
    let backbone = path("models/backbone");
    run("export", &["--checkpoint", &pretrained, "--out", &backbone]);
    for task in ["detection", "segmentation", "landmarks", "classification"] {
        let out = path(task);
        let mut finetune = vec!["finetune", "--task", task, "--init", &pretrained];
        finetune.extend(["--image-size", "32", "--head-channels", "8"]);
        finetune.extend(tiny);
        finetune.extend(["--out", &out]);
        run("train", &finetune);
        let model = path(&format!("models/{task}"));
        run("export", &["--checkpoint", &out, "--out", &model]);
    }
    let card_path = root.join("models/detection/model.json");
    let mut card = ModelCard::read(&card_path).expect("detection card");
    if let TaskSpec::Detection(decoding) = &mut card.task {
        decoding.score_threshold = 0.0;
    }
    std::fs::write(&card_path, card.to_json()).expect("write card");
    root.join("models")
}
