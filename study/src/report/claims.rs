//! The paper's claims checked at the study's scale, each from paired per-seed differences with
//! a Student-t 95% interval ([`crate::stats`]), and the list of every way the study departs
//! from the paper.

use std::fmt::Write as _;

use super::claim_list::{ClaimList, MARGIN};
use crate::stats::Paired;
use crate::{Arm, Study, StudyResults, TASKS};
use exemplar_train::config::Method;

pub(super) fn claims_section(results: &StudyResults, md: &mut String) {
    let _ = writeln!(md, "## The paper's claims at this scale\n");
    let _ = writeln!(
        md,
        "Each comparison is the mean of the per-seed differences (the arms share each seed's initial weights, data order and augmentation draws) with a Student-t 95% interval on {} degrees of freedom. A claim that one arm *beats* another *holds* when the whole interval is above 0, is *reversed* when it is below 0, and is *not resolved* when it contains 0. A claim that one arm does *at least as well* as another is a non-inferiority test with a margin of {MARGIN} point of the metric: it *holds* when the whole interval is above −{MARGIN}, is *reversed* when it is all below −{MARGIN}, and is *not resolved* otherwise. Each verdict is at its own 95% level; the paragraph after the list corrects for the number of claims.\n",
        results.seeds.saturating_sub(1)
    );
    let arm = Arm::default_for;
    let mut claims = ClaimList::default();
    if results.studies.contains(&Study::Methods) {
        let untrained = results.untrained_per_seed(|r| r.linear_top1 * 100.0);
        for method in [Method::MocoV2, Method::ExemplarV2] {
            claims.beats(
                format!(
                    "0. {} beats the untrained network on the linear probe (pretraining helps at all)",
                    arm(method).label()
                ),
                Paired::by_seed(&results.linear_per_seed(arm(method)), &untrained),
                " points",
            );
        }
        let mut pairs = vec![(Method::ExemplarV2, Method::MocoV2, "1.")];
        if results.studies.contains(&Study::V1) {
            pairs.push((Method::ExemplarV1, Method::MocoV1, "1'."));
        }
        for (better, worse, number) in pairs {
            claims.beats(
                format!(
                    "{number} {} beats {} on the linear probe",
                    arm(better).label(),
                    arm(worse).label()
                ),
                Paired::by_seed(
                    &results.linear_per_seed(arm(better)),
                    &results.linear_per_seed(arm(worse)),
                ),
                " points",
            );
        }
    }
    if results.studies.contains(&Study::Transfer) {
        let exemplar = arm(Method::ExemplarV2).slug();
        let ce = arm(Method::Supervised).slug();
        for task in TASKS {
            // Signed so that a positive difference always favours Exemplar-v2.
            let paired = results.transfer_favouring(task, &exemplar, &ce);
            claims.at_least(
                format!(
                    "2. Exemplar-v2 transfers at least as well as CE: {} (positive favours Exemplar-v2)",
                    task.metric_title()
                ),
                paired,
                "",
            );
        }
    }
    if results.studies.contains(&Study::Augmentation) {
        let both = results
            .gain(Method::MocoV2)
            .zip(results.gain(Method::Supervised))
            .and_then(|(moco, ce)| moco.minus(&ce));
        claims.beats(
            "3. Augmentation (aug+ over flip, on the colour scenes) helps MoCo-v2 more than CE"
                .into(),
            both,
            " points",
        );
    }
    super::analysis_sections::claims(results, &mut claims);
    claims.write(md);
    let _ = writeln!(md);
}

/// Every way this study departs from the paper, in one place.
pub(super) fn deviations_section(results: &StudyResults, md: &mut String) {
    let b = &results.budget;
    let _ = writeln!(md, "## Deviations from the paper\n");
    let items = [
        (None, format!(
            "Scale: ResNet-18 at width {} with the 3×3 small stem on {} px images, {} images for {} epochs, K = {}; the paper pretrains ResNet-50 on ImageNet (1.28 M images at 224 px, 200 epochs, K = 65 536).",
            b.width, b.image_size, b.train_subset, b.epochs, b.queue_size
        )),
        (None, format!(
            "Pretraining data: {} (10 classes) for the methods; the paper uses ImageNet's 1000 classes.",
            results.data
        )),
        (None, format!(
            "MoCo settings fitted to the budget: key momentum {} (paper 0.999) with {} shuffled BatchNorm groups on one device (paper: shuffle-BN across 8 GPUs), contrastive lr {} at batch 256 (paper 0.03), chosen by the sweep in `configs/study.toml`. τ (0.2 for v2, 0.07 for v1), the MLP head and the embedding size are the paper's.",
            b.key_momentum, b.bn_splits, b.contrastive_lr
        )),
        (None, "Gaussian blur: σ ∈ [0.1, 2.0] px at 224 px, scaled with the image size but not below half (σ ≤ 1 px at 16 and 32 px); scaled all the way it would not blur at these sizes.".to_string()),
        (Some(Study::Augmentation), format!(
            "The augmentation ablation runs on the built-in colour scenes ({} images at {} px), not on ImageNet: on grayscale data the colour steps have nothing to act on.",
            b.ablation_train, b.ablation_image_size
        )),
        (Some(Study::V1), "The v1 methods use the same cosine schedule as v2 (MoCo v1 used step decay), and their pipeline applies colour jitter before grayscale, as v2's does (MoCo v1's code applies grayscale first).".to_string()),
        (None, "Each augmentation step draws from its own random stream, so arms differ only by their step; torchvision draws from one stream.".to_string()),
        (Some(Study::Transfer), format!(
            "Transfer: detection is a CenterNet-style head (the paper: Faster R-CNN C4 on VOC, Mask R-CNN on COCO); segmentation is DeepLabv3's ASPP on the small-stem backbone (output stride 8 at {} px); landmarks are regressed heatmaps on the built-in faces, not MAFL. All on {} generated images at {} px for {} epochs, the whole network fine-tuned.",
            b.transfer_image_size, b.transfer_train, b.transfer_image_size, b.transfer_epochs
        )),
        (None, "Scoring: a linear probe (50 epochs on standardised features) and weighted kNN on pooled features, not the paper's 100-epoch ImageNet linear classifier.".to_string()),
        (None, format!(
            "Statistics: {} seeds per arm with paired t-intervals; the paper reports single runs.",
            results.seeds
        )),
        (Some(Study::Misalignment), format!(
            "Misalignment: the built-in faces' identity labels and landmarks stand in for CelebA identities and MAFL; the faces are pretrained at the ablation's size for {} epochs ({} steps, against the main arms' {}).",
            b.ablation_epochs,
            b.ablation_train / b.batch_size * b.ablation_epochs,
            b.train_subset / b.batch_size * b.epochs
        )),
        (Some(Study::Inversion), "Inversion: backbones pretrained on the colour scenes at 32 px invert scenes at 32 px with a small Deep Image Prior hourglass (one skip) for 400 steps; the paper inverts ImageNet ResNet-50 features at 224 px with the full DIP network. The scores are the pixel error after matching each reconstruction's colour statistics to the picture's and the correlation of their edges, and a verdict needs the reconstructions to beat a flat image of the mean colour; the paper shows pictures only.".to_string()),
        (Some(Study::DetectionErrors), "Detection errors: the breakdown follows Hoiem et al.'s definitions at IoU 0.1/0.5 without its similar-class split (the scenes have no class hierarchy), on the built-in scenes' CenterNet-style detectors.".to_string()),
        (Some(Study::PretrainingData), "Pretraining data: the built-in textures and faces stand in for the paper's non-ImageNet corpora; \"10%\" is 10% of the study's main pretraining images drawn at random (not stratified per class), trained for the same number of steps. Every arm's queue is cut to at most half of its training images (a whole number of batches; a queue as long as the images would hold a query's own key from the previous epoch for half of them): the 10% arm's, the faces' and the textures'.".to_string()),
        (Some(Study::FewShot), format!(
            "Novel-class few-shot: the main data's first {} classes are the base classes and the rest novel (Mini-ImageNet: 64 base, 16 validation, 20 novel classes of ImageNet at 84 px); episodes use validation images. With 10 classes (Fashion-MNIST, the built-in scenes) only {} are novel, so every {}-way episode is the same problem with other shots and queries drawn.",
            crate::BASE_CLASSES,
            10 - crate::BASE_CLASSES,
            crate::analyses::WAYS
        )),
    ];
    // A study's own deviations only where it ran.
    for (study, item) in items {
        if study.is_none_or(|s| results.studies.contains(&s)) {
            let _ = writeln!(md, "- {item}");
        }
    }
    let _ = writeln!(md);
}
