//! The study as a list of independent runs: what `train experiment --plan` prints and what
//! `--only N` runs one of, so that several machines sharing `--work` (a Kubernetes Indexed Job,
//! `docker/k8s/study-job.yaml`) can run the study side by side. Every run is reused by its
//! configuration, so a final `train experiment` without `--only` finds them all done and writes
//! the report.
//!
//! Runs come in two stages: stage 1 pretrains (and scores the untrained networks and the
//! sweep's points); stage 2 works on the stage-1 backbones — fine-tunes them (or a randomly
//! initialised network), runs few-shot episodes on novel classes, inverts their features. A
//! stage-2 run refuses to start before its backbone is finished.

use crate::analyses::{self, FEWSHOT_CORPORA, Finished};
use crate::arms::transfer_config;
use crate::budget::Budget;
use crate::runs::{Probe, Scoring, pretrain_finished, pretrain_run, transfer_run, untrained_run};
use crate::{
    Arm, Corpus, DATA_CORPORA, ExperimentError, INVERTED_CORPUS, Study, StudyOptions, StudyResults,
    SweepResult, TASKS, TRANSFERRED, UNTRAINED, arms, pretrain_config, pretrain_dir, sweep,
};
use exemplar_train::config::Method;
use exemplar_train::finetune::TaskKind;

/// One run of the study.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A pretraining arm, scored by the probe of its corpus.
    Pretrain { arm: Arm, seed: u64 },
    /// The untrained network: the methods study's floor.
    Untrained { seed: u64 },
    /// A backbone fine-tuned on a task, or the task from random initialisation (`init: None`).
    Transfer {
        task: TaskKind,
        init: Option<Arm>,
        seed: u64,
    },
    /// Few-shot episodes on the classes a backbone did not pretrain on.
    FewShot { arm: Arm, seed: u64 },
    /// A backbone's features of a few pictures inverted.
    Invert { arm: Arm, seed: u64 },
    /// A point of the settings sweep (an index into [`sweep::points`]), scored held out.
    SweepPoint { index: usize, seed: u64 },
    /// The untrained network on the sweep's held-out images.
    SweepUntrained { seed: u64 },
}

impl Step {
    /// 1: pretraining and scoring; 2: work on a stage-1 backbone (fine-tuning, few-shot
    /// episodes, inversion; fine-tuning from random initialisation is kept with the others).
    pub fn stage(&self) -> u8 {
        match self {
            Step::Transfer { .. } | Step::FewShot { .. } | Step::Invert { .. } => 2,
            _ => 1,
        }
    }

    /// How the log and `--plan` name it.
    pub fn label(&self, budget: &Budget) -> String {
        match self {
            Step::Pretrain { arm, seed } => format!("{} seed {seed}", arm.slug()),
            Step::Untrained { seed } => format!("untrained seed {seed}"),
            Step::Transfer { task, init, seed } => {
                format!("{} from {} seed {seed}", task.name(), init_name(*init))
            }
            Step::FewShot { arm, seed } => {
                format!("few-shot on novel classes: {} seed {seed}", arm.slug())
            }
            Step::Invert { arm, seed } => format!("inversion: {} seed {seed}", arm.slug()),
            Step::SweepPoint { index, seed } => {
                let points = sweep::points(budget);
                let name = points.get(*index).map_or("?", |p| p.name.as_str());
                format!("sweep: {name} seed {seed}")
            }
            Step::SweepUntrained { seed } => format!("sweep: untrained seed {seed}"),
        }
    }
}

fn init_name(init: Option<Arm>) -> String {
    init.map_or("random".to_string(), |arm| arm.slug())
}

/// The fine-tuning runs the chosen studies need, each `(task, backbone)` once, in the order
/// of the studies.
fn transfers(studies: &[Study]) -> Vec<(TaskKind, Option<Arm>)> {
    let mut transfers = Vec::new();
    let mut add = |task, init| {
        if !transfers.contains(&(task, init)) {
            transfers.push((task, init));
        }
    };
    let with_random =
        |corpus| std::iter::once(None).chain(TRANSFERRED.map(move |m| Some(Arm::on(m, corpus))));
    for study in studies {
        match study {
            Study::Transfer => {
                for task in TASKS {
                    with_random(Corpus::Main).for_each(|init| add(task, init));
                }
            }
            Study::DetectionErrors => {
                with_random(Corpus::Main).for_each(|init| add(TaskKind::Detection, init));
            }
            Study::Misalignment => {
                for method in TRANSFERRED {
                    add(TaskKind::Landmarks, Some(Arm::on(method, Corpus::Faces)));
                }
            }
            Study::PretrainingData => {
                for task in TASKS {
                    for corpus in DATA_CORPORA {
                        for method in TRANSFERRED {
                            add(task, Some(Arm::on(method, corpus)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    transfers
}

/// Every run the chosen studies need, in the order one invocation runs them: all of stage 1
/// before stage 2.
pub fn plan(options: &StudyOptions, budget: &Budget) -> Vec<Step> {
    let seeds = 0..options.seeds as u64;
    let has = |study| options.studies.contains(&study);
    let mut steps = Vec::new();
    for arm in arms(&options.studies) {
        steps.extend(seeds.clone().map(|seed| Step::Pretrain { arm, seed }));
    }
    if has(Study::Methods) {
        steps.extend(seeds.clone().map(|seed| Step::Untrained { seed }));
    }
    if has(Study::Sweep) {
        for index in 0..sweep::points(budget).len() {
            steps.extend(seeds.clone().map(|seed| Step::SweepPoint { index, seed }));
        }
        steps.extend(seeds.clone().map(|seed| Step::SweepUntrained { seed }));
    }
    for (task, init) in transfers(&options.studies) {
        steps.extend(
            seeds
                .clone()
                .map(|seed| Step::Transfer { task, init, seed }),
        );
    }
    if has(Study::FewShot) {
        for corpus in FEWSHOT_CORPORA {
            for method in TRANSFERRED {
                let arm = Arm::on(method, corpus);
                steps.extend(seeds.clone().map(|seed| Step::FewShot { arm, seed }));
            }
        }
    }
    if has(Study::Inversion) {
        for method in TRANSFERRED {
            let arm = Arm::on(method, INVERTED_CORPUS);
            steps.extend(seeds.clone().map(|seed| Step::Invert { arm, seed }));
        }
    }
    steps.sort_by_key(Step::stage);
    steps
}

/// Runs `step` (or reuses its finished run), adds its result to `results` and logs it as run
/// `number` of `total`.
pub fn execute(
    step: &Step,
    options: &StudyOptions,
    budget: &Budget,
    results: &mut StudyResults,
    (number, total): (usize, usize),
) -> Result<(), ExperimentError> {
    let label = step.label(budget);
    let (reused, scores) = match *step {
        Step::Pretrain { arm, seed } => {
            let probe = Probe::for_corpus(options, budget, arm.corpus);
            let dir = pretrain_dir(options, &arm.slug(), seed);
            let config = pretrain_config(options, budget, arm, seed);
            let (result, reused) = pretrain_run(&config, arm, &dir, &probe, options)?;
            let scores = result.scores();
            results.pretrain.push(result);
            (reused, scores)
        }
        Step::Untrained { seed } => {
            let probe = Probe::for_corpus(options, budget, Corpus::Main);
            // Everything that shapes the network and its input is in the CE arm's config.
            let config =
                pretrain_config(options, budget, Arm::default_for(Method::Supervised), seed);
            let dir = pretrain_dir(options, UNTRAINED, seed);
            let (result, reused) = untrained_run(options, &config, &probe, &dir, seed)?;
            let scores = result.scores();
            results.pretrain.push(result);
            (reused, scores)
        }
        Step::Transfer { task, init, seed } => {
            let dir = options
                .work
                .join("transfer")
                .join(task.name())
                .join(init_name(init))
                .join(format!("seed{seed}"));
            let backbone = init
                .map(|arm| backbone(options, budget, arm, seed))
                .transpose()?;
            // The backbone's own configuration is part of the run's identity: a retrained
            // backbone means the transfer must be redone too.
            let (backbone_dir, backbone_config) = backbone.map(|b| (b.dir, b.config)).unzip();
            let config = transfer_config(options, budget, task, backbone_dir, seed);
            let (result, reused) = transfer_run(
                config,
                backbone_config.as_deref().unwrap_or(""),
                &dir,
                &init_name(init),
            )?;
            let scores = format!("{} {:.2}", result.metric, result.value);
            results.transfer.push(result);
            (reused, scores)
        }
        Step::FewShot { arm, seed } => {
            let finished = backbone(options, budget, arm, seed)?;
            let (result, reused) = analyses::fewshot_run(options, budget, &finished)?;
            let scores = format!(
                "5-way 1-shot {:.2}%, 5-shot {:.2}%",
                result.one_shot, result.five_shot
            );
            results.fewshot.push(result);
            (reused, scores)
        }
        Step::Invert { arm, seed } => {
            let finished = backbone(options, budget, arm, seed)?;
            let (result, reused) = analyses::invert_run(options, budget, &finished)?;
            let scores = format!("pixel MSE {:.4}", result.mean_mse());
            results.inversion.push(result);
            (reused, scores)
        }
        Step::SweepPoint { index, seed } => {
            let point = sweep::points(budget).swap_remove(index);
            let probe = Probe {
                scoring: Scoring::HeldOut,
                ..Probe::for_corpus(options, &point.budget, Corpus::Main)
            };
            let arm = Arm::default_for(Method::MocoV2);
            let dir = sweep::root(options, budget)
                .join(format!("point{index}"))
                .join(format!("seed{seed}"));
            let config = pretrain_config(options, &point.budget, arm, seed);
            let (result, reused) = pretrain_run(&config, arm, &dir, &probe, options)?;
            let scores = format!("held-out {}", result.scores());
            results.sweep.push(SweepResult::of(point.name, &result));
            (reused, scores)
        }
        Step::SweepUntrained { seed } => {
            let probe = Probe {
                scoring: Scoring::HeldOut,
                ..Probe::for_corpus(options, budget, Corpus::Main)
            };
            let dir = options
                .work
                .join("sweep")
                .join(UNTRAINED)
                .join(format!("seed{seed}"));
            let config =
                pretrain_config(options, budget, Arm::default_for(Method::Supervised), seed);
            let (result, reused) = untrained_run(options, &config, &probe, &dir, seed)?;
            let scores = format!("held-out {}", result.scores());
            results
                .sweep
                .push(SweepResult::of(sweep::UNTRAINED_POINT.into(), &result));
            (reused, scores)
        }
    };
    results.reused += usize::from(reused);
    let how = if reused { " (reused)" } else { "" };
    eprintln!("[{number}/{total}] {label}: {scores}{how}");
    Ok(())
}

/// The finished stage-1 backbone of `arm` and `seed`.
fn backbone(
    options: &StudyOptions,
    budget: &Budget,
    arm: Arm,
    seed: u64,
) -> Result<Finished, ExperimentError> {
    let dir = pretrain_dir(options, &arm.slug(), seed);
    let config = pretrain_config(options, budget, arm, seed).to_toml();
    if !pretrain_finished(&dir, &config) {
        return Err(ExperimentError::Invalid(format!(
            "the backbone {} seed {seed} is not finished in {}: run the plan's stage-1 runs first",
            arm.slug(),
            dir.display()
        )));
    }
    Ok(Finished {
        arm,
        seed,
        dir,
        config,
    })
}
