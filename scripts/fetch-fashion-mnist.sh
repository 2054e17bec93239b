#!/usr/bin/env bash
# Puts Fashion-MNIST (the four IDX files) where the study finds it and prints the directory.
#
# Uses Debian's `dataset-fashion-mnist` when it is installed (/usr/share/datasets/fashion-mnist);
# otherwise downloads that package from the Debian archive with apt-get (no root needed) and
# unpacks it into .data/fashion-mnist in the project.
#
#   scripts/fetch-fashion-mnist.sh        # prints the directory holding train-images-idx3-ubyte.gz …
set -euo pipefail
cd "$(dirname "$0")/.."
system=/usr/share/datasets/fashion-mnist
local_dir=.data/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

complete() {
  for f in "${files[@]}"; do [ -s "$1/$f" ] || return 1; done
}

if complete "$system"; then
  echo "$system"
  exit 0
fi
if complete "$local_dir"; then
  echo "$PWD/$local_dir"
  exit 0
fi
command -v apt-get >/dev/null || {
  echo "error: Fashion-MNIST is not installed and apt-get is missing; put its four IDX files in $local_dir" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "downloading Debian's dataset-fashion-mnist into $local_dir" >&2
(cd "$work" && apt-get download dataset-fashion-mnist >&2)
dpkg-deb -x "$work"/dataset-fashion-mnist_*.deb "$work/root"
mkdir -p "$local_dir"
for f in "${files[@]}"; do
  cp "$work/root$system/$f" "$local_dir/$f"
done
complete "$local_dir" || { echo "error: the package did not hold the four IDX files" >&2; exit 1; }
echo "$PWD/$local_dir"
