#!/usr/bin/env python3
"""The PyTorch side of the GPU benchmark: the same training steps and the same inference as the
Rust measurements, on the same machine in the same run, so every figure becomes a ratio.

    reference.py train --arch resnet50 --batch 256 --image-size 224 --method exemplar-v2 \
        --precision bf16 --channels-last --steps 20
    reference.py infer --arch resnet50 --image-size 224 --batches 1,32,256 --precision f32 --io host

Each measurement is one JSON object on stdout (what scripts/gpu-bench/report.py reads).

The networks are written out here rather than taken from torchvision (which the GPU machine may
not have): torchvision's ResNet v1.5, as models/src/backbone/resnet.rs builds it. A training step
is what train/src/pretrain/learner.rs does: query and momentum key encoders, a 2-layer MLP head, a key
queue with labels, shuffled-batch keys, InfoNCE at tau = 0.2 with same-class queue entries masked
out (Exemplar-v2) or not (MoCo-v2); or cross-entropy with a linear classifier (supervised). SGD
with momentum 0.9 and weight decay 1e-4 in both.
"""

import argparse
import copy
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEPTHS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
          "resnet50": ("bottleneck", [3, 4, 6, 3])}


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.down = shortcut(cin, width, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.down = shortcut(cin, width * 4, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """Images in, globally pooled features out (the exported embedding model's graph)."""

    def __init__(self, arch, width=1.0, stem="imagenet"):
        super().__init__()
        kind, blocks = DEPTHS[arch]
        block = Basic if kind == "basic" else Bottleneck
        base = max(4, round(64 * width))
        if stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(3, base, 7, 2, 3, bias=False),
                                      nn.BatchNorm2d(base), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
        else:  # the small (CIFAR) stem: a 3x3 stride-1 convolution, no pooling
            self.stem = nn.Sequential(nn.Conv2d(3, base, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(base), nn.ReLU(inplace=True))
        layers, cin = [], base
        for stage, count in enumerate(blocks):
            width = base * 2 ** stage
            for i in range(count):
                layers.append(block(cin, width, 2 if stage > 0 and i == 0 else 1))
                cin = width * block.expansion
        self.layers = nn.Sequential(*layers)
        self.out_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)


class Encoder(nn.Module):
    """Backbone plus head: the MLP projection to 128-d unit vectors, or a linear classifier."""

    def __init__(self, arch, contrastive, classes, width=1.0, stem="imagenet"):
        super().__init__()
        self.backbone = ResNet(arch, width, stem)
        f = self.backbone.out_features
        self.contrastive = contrastive
        if contrastive:
            self.head = nn.Sequential(nn.Linear(f, f), nn.ReLU(inplace=True), nn.Linear(f, 128))
        else:
            self.head = nn.Linear(f, classes)

    def forward(self, x):
        y = self.head(self.backbone(x))
        return F.normalize(y, dim=1) if self.contrastive else y


def autocast(args):
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.precision)
    return torch.autocast(args.device.split(":")[0], dtype=dtype, enabled=dtype is not None)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train(args):
    device, n, size = args.device, args.batch, args.image_size
    contrastive = args.method != "supervised"
    classes = 10
    query = Encoder(args.arch, contrastive, classes, args.width, args.stem).to(device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    query = query.to(memory_format=memory)
    optimizer = torch.optim.SGD(query.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    if contrastive:
        key = copy.deepcopy(query).requires_grad_(False)
        queue = F.normalize(torch.randn(args.queue, 128, device=device), dim=1)
        queue_labels = torch.full((args.queue,), -1, dtype=torch.long, device=device)
        pointer = 0
    # Two batches of random images and labels, cycled: the content does not change the speed.
    batches = [(torch.randn(n, 3, size, size, device=device).to(memory_format=memory),
                torch.randn(n, 3, size, size, device=device).to(memory_format=memory),
                torch.randint(0, classes, (n,), device=device)) for _ in range(2)]

    def step(x1, x2, labels):
        nonlocal pointer
        with autocast(args):
            if not contrastive:
                loss = F.cross_entropy(query(x1), labels)
            else:
                q = query(x1)
                with torch.no_grad():
                    qp, kp = list(query.parameters()), list(key.parameters())
                    torch._foreach_mul_(kp, args.momentum)
                    torch._foreach_add_(kp, qp, alpha=1 - args.momentum)
                    order = torch.randperm(n, device=device)
                    k = key(x2[order])[torch.argsort(order)]
                positive = (q * k).sum(1, keepdim=True)
                negative = q @ queue.t().to(q.dtype)
                if args.method == "exemplar-v2":
                    same = labels[:, None] == queue_labels[None, :]
                    negative = negative.masked_fill(same, float("-inf"))
                logits = torch.cat([positive, negative], 1).float() / args.temperature
                loss = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if contrastive:
            end = pointer + n
            idx = torch.arange(pointer, end, device=device) % args.queue
            queue[idx] = k.float()
            queue_labels[idx] = labels
            pointer = end % args.queue
        return loss.detach()

    for i in range(args.warmup):
        step(*batches[i % 2])
    sync(device)
    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(*batches[i % 2])
    sync(device)
    seconds = time.perf_counter() - start
    emit(args, suite="train", method=args.method, batch=n, steps=args.steps,
         step_seconds=seconds / args.steps, images_per_second=args.steps * n / seconds,
         last_loss=loss.item())


def infer(args):
    device, size = args.device, args.image_size
    model = ResNet(args.arch).to(device).eval()
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    for n in [int(b) for b in args.batches.split(",")]:
        host = torch.randn(n, 3, size, size)
        if args.io == "pinned" and device.startswith("cuda"):
            host = host.pin_memory()
        resident = host.to(device).to(memory_format=memory)

        def call():
            with torch.inference_mode(), autocast(args):
                if args.io == "device":
                    return model(resident)
                x = host.to(device, non_blocking=args.io == "pinned").to(memory_format=memory)
                return model(x).float().cpu()

        for _ in range(args.warmup):
            call()
        sync(device)
        iters = max(args.min_iters, -(-args.min_images // n))
        start = time.perf_counter()
        for _ in range(iters):
            call()
        sync(device)
        seconds = time.perf_counter() - start
        emit(args, suite="infer", batch=n, io=args.io, iterations=iters,
             latency_ms=1000 * seconds / iters, images_per_second=iters * n / seconds)


def emit(args, **fields):
    record = {"impl": "pytorch", "version": torch.__version__, "arch": args.arch,
              "width": args.width, "stem": args.stem, "image_size": args.image_size, "precision": args.precision,
              "channels_last": args.channels_last, "device": describe(args.device)}
    record.update(fields)
    print(json.dumps(record), flush=True)


def describe(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=["train", "infer"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", choices=sorted(DEPTHS), default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0,
                        help="train: channel width multiplier (64 x width in the first stage)")
    parser.add_argument("--stem", choices=["imagenet", "small"], default="imagenet",
                        help="train: 7x7/2 convolution + max pooling, or a 3x3/1 convolution")
    parser.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="train: batch size")
    parser.add_argument("--method", choices=["exemplar-v2", "moco-v2", "supervised"],
                        default="exemplar-v2")
    parser.add_argument("--steps", type=int, default=20, help="train: measured steps")
    parser.add_argument("--queue", type=int, default=65536)
    parser.add_argument("--momentum", type=float, default=0.999)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--batches", default="1,32,256", help="infer: batch sizes")
    parser.add_argument("--io", choices=["host", "pinned", "device"], default="host",
                        help="infer: pageable host tensors in and out per call, pinned ones, "
                             "or input and output left on the device")
    parser.add_argument("--min-iters", type=int, default=10)
    parser.add_argument("--min-images", type=int, default=2048)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: PyTorch sees no CUDA device")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    train(args) if args.suite == "train" else infer(args)


if __name__ == "__main__":
    main()
