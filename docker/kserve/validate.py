"""Checks the KServe manifests against KServe's own API types, offline.

KServe's CRD schemas are not on PyPI, but its Python SDK (`kserve`) and the Kubernetes client
(`kubernetes`) carry every API type as a generated class with `openapi_types` (field -> type),
`attribute_map` (field -> YAML key) and the required fields. This reads those files without
importing them (their dependencies are not needed) and checks each manifest strictly: every
key must be a field of its type, every value of the field's type, every required field present.
Then it checks what serve relies on: the runtime's container, its arguments and port, and that
the InferenceService names the runtime, a model format it supports and the v2 protocol.

    python validate.py SITE_PACKAGES docker/kserve/*.yaml
"""

import ast
import pathlib
import re
import sys

import yaml

KINDS = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "V1alpha1ServingRuntime",
    ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
}
REQUIRED = re.compile(r"client_side_validation and (\w+) is None")


def load_types(site):
    """Class name -> (field -> type, field -> key, required fields), from the generated models."""
    types = {}
    folders = [site / "kserve" / "models", site / "kubernetes" / "client" / "models"]
    for folder in folders:
        assert folder.is_dir(), f"{folder} is missing: install kserve and kubernetes (--no-deps)"
        for path in folder.glob("*.py"):
            source = path.read_text()
            required = set(REQUIRED.findall(source))
            for node in ast.parse(source).body:
                if not isinstance(node, ast.ClassDef):
                    continue
                fields, annotated = {}, set()
                for statement in node.body:
                    # kserve's models assign the tables; the Kubernetes client's (pydantic)
                    # annotate them, and annotate required fields without Optional[...].
                    if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                        target, value = statement.targets[0].id, statement.value
                    elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                        target, value = statement.target.id, statement.value
                        if not ast.unparse(statement.annotation).startswith(("Optional", "ClassVar")):
                            annotated.add(target)
                    else:
                        continue
                    if target in ("openapi_types", "attribute_map"):
                        fields[target] = ast.literal_eval(value)
                if "openapi_types" in fields:
                    needed = (required | annotated) & set(fields["openapi_types"])
                    types[node.name] = (fields["openapi_types"], fields["attribute_map"], needed)
    return types


def check(value, kind, where, types, errors):
    """Appends to `errors` what in `value` does not fit the type `kind`."""
    if kind == "object":
        return
    # The Kubernetes client writes List[...] and Dict[str, ...]; kserve list[...] and dict(str, ...).
    kind = re.sub(r"^List\[(.*)\]$", r"list[\1]", kind)
    kind = re.sub(r"^Dict\[(.*)\]$", r"dict(\1)", kind)
    if kind.startswith("list["):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {value!r}")
            return
        for i, item in enumerate(value):
            check(item, kind[5:-1], f"{where}[{i}]", types, errors)
        return
    if kind.startswith("dict("):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {value!r}")
            return
        inner = kind[5:-1].split(",", 1)[1].strip()
        for key, item in value.items():
            check(item, inner, f"{where}.{key}", types, errors)
        return
    scalars = {"str": str, "bool": bool, "int": int, "float": (int, float), "datetime": str}
    if kind in scalars:
        ok = isinstance(value, scalars[kind]) and not (kind in ("int", "float") and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: expected {kind}, got {value!r}")
        return
    if kind not in types:
        errors.append(f"{where}: unknown type {kind}")
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a {kind} mapping, got {value!r}")
        return
    fields, keys, required = types[kind]
    by_key = {key: field for field, key in keys.items()}
    for key, item in value.items():
        if key not in by_key:
            errors.append(f"{where}: {kind} has no field {key!r}")
            continue
        check(item, fields[by_key[key]], f"{where}.{key}", types, errors)
    for field in required:
        if field in keys and keys[field] not in value:
            errors.append(f"{where}: {kind} needs {keys[field]!r}")


def main():
    site = pathlib.Path(sys.argv[1])
    types = load_types(site)
    documents = []
    errors = []
    for name in sys.argv[2:]:
        for document in yaml.safe_load_all(pathlib.Path(name).read_text()):
            kind = KINDS.get((document.get("apiVersion"), document.get("kind")))
            if kind is None:
                errors.append(f"{name}: not a ServingRuntime or InferenceService")
                continue
            check(document, kind, f"{name}:{document['kind']}", types, errors)
            documents.append(document)
    if errors:
        fail(errors)
    try:
        semantic_errors(documents, errors)
    except (KeyError, ValueError, IndexError) as missing:
        errors.append(f"a field serve relies on is missing or wrong: {missing!r}")
    if errors:
        fail(errors)
    print(f"{len(documents)} KServe manifests match KServe's API types ({len(types)} types read)")


def fail(errors):
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)


def semantic_errors(documents, errors):
    """Appends to `errors` what the manifests get wrong about serve and each other."""
    runtimes = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServingRuntime"}
    services = [d for d in documents if d["kind"] == "InferenceService"]
    if not runtimes or not services:
        errors.append("expected a ServingRuntime and an InferenceService")
        return
    for runtime in runtimes.values():
        spec = runtime["spec"]
        [container] = [c for c in spec["containers"] if c["name"] == "kserve-container"]
        args = container.get("args", [])
        if args[args.index("--models") + 1] != "/mnt/models":
            errors.append("the runtime must load /mnt/models, where KServe puts the storageUri")
        if container["ports"][0]["containerPort"] != 8080 or "0.0.0.0:8080" not in args:
            errors.append("serve must listen on 0.0.0.0:8080, the runtime's port")
        if "v2" not in spec.get("protocolVersions", []):
            errors.append("the runtime must declare the v2 protocol")
    for service in services:
        model = service["spec"]["predictor"]["model"]
        runtime = runtimes.get(model.get("runtime"))
        if runtime is None:
            errors.append(f"InferenceService {service['metadata']['name']}: no runtime {model.get('runtime')!r}")
            continue
        formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
        if model["modelFormat"]["name"] not in formats:
            errors.append(f"model format {model['modelFormat']['name']!r} is not one of {formats}")
        if model.get("protocolVersion") not in runtime["spec"]["protocolVersions"]:
            errors.append(f"protocol {model.get('protocolVersion')!r} is not the runtime's")


if __name__ == "__main__":
    main()
