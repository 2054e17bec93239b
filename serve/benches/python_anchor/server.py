"""The server a Python user would write for an exported exemplar model: FastAPI + Pillow +
onnxruntime, one session per worker process. scripts/serve-bench.sh runs it beside `serve`
(results/serve-vs-python-cpu.md).

    EXEMPLAR_MODELS=DIR [ORT_INTRA_OP_THREADS=1] uvicorn server:app --workers 2 --port 8081

It reads the same folder as `serve --models` (one subfolder per model with model.onnx and
model.json) and answers the same routes with the same JSON: POST /v1/classify and /v1/detect
with the image bytes as the body (`?model=NAME` when several fit), GET /v2/health/ready.
Pre-processing is the model card's: stretch to the input size (bilinear), scale to [0, 1],
normalise per channel, CHW. ORT_INTRA_OP_THREADS sets each session's threads (ONNX Runtime's
default is one per core, in every worker process). Detection decoding is the card's CenterNet decoding (3×3 peaks,
threshold, per-class NMS, at most max_detections), written with numpy.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Request
from PIL import Image

MODELS = Path(os.environ.get("EXEMPLAR_MODELS", "models"))


def load(folder: Path) -> dict:
    card = json.loads((folder / "model.json").read_text())
    options = ort.SessionOptions()
    threads = os.environ.get("ORT_INTRA_OP_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    norm = card["input"]["normalization"]
    return {
        "card": card,
        "session": session,
        "input": card["input"]["name"],
        "size": (card["input"]["width"], card["input"]["height"]),
        "mean": np.array(norm["mean"], dtype=np.float32).reshape(3, 1, 1),
        "std": np.array(norm["std"], dtype=np.float32).reshape(3, 1, 1),
    }


models = {p.name: load(p) for p in sorted(MODELS.iterdir()) if (p / "model.json").is_file()}
app = FastAPI()


def pick(task: str, name: str | None) -> tuple[str, dict]:
    if name is not None:
        if name not in models:
            raise HTTPException(404, f"no model named '{name}'")
        return name, models[name]
    fitting = [(n, m) for n, m in models.items() if m["card"]["task"]["kind"] == task]
    if len(fitting) != 1:
        raise HTTPException(400, f"{len(fitting)} {task} models are loaded: choose one with ?model=NAME")
    return fitting[0]


def run(model: dict, body: bytes) -> tuple[np.ndarray, tuple[int, int]]:
    try:
        image = Image.open(io.BytesIO(body)).convert("RGB")
    except Exception as e:  # Pillow raises several types for bad data
        raise HTTPException(400, f"unreadable image: {e}")
    size = image.size
    pixels = np.asarray(image.resize(model["size"], Image.BILINEAR), dtype=np.float32) / 255.0
    chw = (pixels.transpose(2, 0, 1) - model["mean"]) / model["std"]
    outputs = model["session"].run(None, {model["input"]: chw[None].astype(np.float32)})
    # A detector has three outputs (heatmaps, offsets, sizes), joined along the channels as its
    # decoding reads them; every other model has one.
    output = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)
    return output[0], size


@app.get("/v2/health/ready")
def ready():
    return {"ready": bool(models)}


@app.post("/v1/classify")
async def classify(request: Request, model: str | None = None, top_k: int = 5):
    name, m = pick("classification", model)
    logits, _ = run(m, await request.body())
    e = np.exp(logits - logits.max())
    p = e / e.sum()
    order = np.argsort(-p)[: max(top_k, 1)]
    names = m["card"]["class_names"]
    top = [{"class_id": int(c), "class_name": names[c], "score": float(p[c])} for c in order]
    return {"model": name, "top": top}


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@app.post("/v1/detect")
async def detect(request: Request, model: str | None = None):
    name, m = pick("detection", model)
    out, (width, height) = run(m, await request.body())
    spec = m["card"]["task"]
    classes = len(m["card"]["class_names"])
    stride = spec["stride"]
    heat = 1.0 / (1.0 + np.exp(-out[:classes]))
    padded = np.pad(out[:classes], ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = heat.shape[1:]
    peak = np.ones_like(heat, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            peak &= out[:classes] >= padded[:, dy : dy + h, dx : dx + w]
    cls, ys, xs = np.nonzero(peak & (heat >= spec["score_threshold"]))
    scores = heat[cls, ys, xs]
    cx = (xs + out[classes, ys, xs]) * stride
    cy = (ys + out[classes + 1, ys, xs]) * stride
    bw = np.exp(np.clip(out[classes + 2, ys, xs], -10, 10)) * stride
    bh = np.exp(np.clip(out[classes + 3, ys, xs], -10, 10)) * stride
    sx, sy = width / m["size"][0], height / m["size"][1]
    boxes = np.stack([
        np.clip((cx - bw / 2) * sx, 0, width), np.clip((cy - bh / 2) * sy, 0, height),
        np.clip((cx + bw / 2) * sx, 0, width), np.clip((cy + bh / 2) * sy, 0, height),
    ], axis=1)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
    order = np.argsort(-scores, kind="stable")
    kept = []
    for i in order:
        same = [k for k in kept if cls[k] == cls[i]]
        if same and iou(boxes[i], boxes[same]).max() > spec["nms_iou"]:
            continue
        kept.append(i)
        if len(kept) == spec["max_detections"]:
            break
    names = m["card"]["class_names"]
    detections = [{
        "bbox": [float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2] - boxes[i, 0]), float(boxes[i, 3] - boxes[i, 1])],
        "score": float(scores[i]), "class_id": int(cls[i]), "class_name": names[cls[i]],
    } for i in kept]
    return {"model": name, "width": width, "height": height, "detections": detections}
