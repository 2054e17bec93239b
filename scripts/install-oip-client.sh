#!/usr/bin/env bash
# Triton's Open Inference Protocol clients (the `tritonclient` PyPI package, HTTP and gRPC) for
# the protocol tests (tests/oip.rs runs tests/oip-client/check.py with them), and an OpenAPI
# validator for serve's /openapi.json. They go into a virtual environment under .runtime/
# (created once), as docker/lint.sh installs its tools.
#
#   scripts/install-oip-client.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.runtime/oip-client
if "$venv/bin/python" -c "import tritonclient.http, tritonclient.grpc, openapi_spec_validator" 2>/dev/null; then
  exit 0
fi
echo "installing tritonclient[http,grpc] and openapi-spec-validator into $venv (for the protocol tests)" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "tritonclient[http,grpc]==2.73.0" numpy==2.4.6 \
  openapi-spec-validator==0.9.0
