#!/usr/bin/env bash
# The paper's comparisons at small scale, from a fresh clone: fetch Fashion-MNIST, build the
# trainer, run the default studies (methods, transfer, misalignment, detection errors) over 5
# seeds with the settings of configs/study.toml, write the report to results/study/.
#
#   scripts/study.sh                  # the default studies: see docs/study.md for their time
#   scripts/study.sh --study sweep --seeds 2 --out results/study-sweep
#                                     # the settings sweep behind configs/study.toml
#   scripts/study.sh --scale 5        # more data and epochs (on a GPU add --device cuda:0)
#   scripts/study.sh --study methods  # one study (methods, v1, augmentation, transfer, misalignment,
#                                     # inversion, detection-errors, pretraining-data, few-shot)
#
# Any `train experiment` flag may be added. Finished runs are kept in runs/study/ and reused, so
# an interrupted study continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(scripts/fetch-fashion-mnist.sh)
# The release build: the one the pipeline and the tests use.
cargo build --release --quiet -p exemplar-train-cli --bin train
exec target/release/train experiment --data "idx:$data" --settings configs/study.toml \
  --out results/study --work runs/study "$@"
