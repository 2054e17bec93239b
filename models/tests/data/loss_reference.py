#!/usr/bin/env python3
"""Float64 reference values for the MoCo / Exemplar InfoNCE loss and its gradient.

Written independently of the Rust code, in plain Python (no numpy), from the definition:

    logits_i = [q_i . k_i, q_i . queue_1, ..., q_i . queue_K] / tau
    Exemplar: logits_i[1 + j] = -inf where queue_label_j == label_i (label_i != -1)
    loss     = mean_i( -log softmax(logits_i)[0] )

The analytic gradient dL/dq is checked against central finite differences before the file is
written. Rerun with `python3 loss_reference.py > loss_reference.json`.
"""
import json
import math
import random

UNLABELLED = -1


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def loss_and_grad(q, k, queue, labels, queue_labels, tau):
    n = len(q)
    total = 0.0
    grad = []
    for i in range(n):
        cols = [k[i]] + queue
        logits = [sum(a * b for a, b in zip(q[i], c)) / tau for c in cols]
        keep = [True] + [
            labels is None or labels[i] == UNLABELLED or queue_labels[j] != labels[i]
            for j in range(len(queue))
        ]
        m = max(l for l, kp in zip(logits, keep) if kp)
        exps = [math.exp(l - m) if kp else 0.0 for l, kp in zip(logits, keep)]
        z = sum(exps)
        p = [e / z for e in exps]
        total += -(logits[0] - m - math.log(z))
        d_logits = [(p[j] - (1.0 if j == 0 else 0.0)) / n for j in range(len(cols))]
        grad.append([sum(d_logits[j] * cols[j][d] / tau for j in range(len(cols))) for d in range(len(q[i]))])
    return total / n, grad


def check_finite_differences(q, k, queue, labels, queue_labels, tau, grad):
    h = 1e-6
    for i in range(len(q)):
        for d in range(len(q[i])):
            plus = [row[:] for row in q]
            minus = [row[:] for row in q]
            plus[i][d] += h
            minus[i][d] -= h
            lp, _ = loss_and_grad(plus, k, queue, labels, queue_labels, tau)
            lm, _ = loss_and_grad(minus, k, queue, labels, queue_labels, tau)
            numeric = (lp - lm) / (2 * h)
            assert abs(numeric - grad[i][d]) < 1e-7, (i, d, numeric, grad[i][d])


def case(name, rng, n, dim, k, tau, labels, queue_labels):
    q = [unit([rng.gauss(0, 1) for _ in range(dim)]) for _ in range(n)]
    pos = [unit([rng.gauss(0, 1) for _ in range(dim)]) for _ in range(n)]
    queue = [unit([rng.gauss(0, 1) for _ in range(dim)]) for _ in range(k)]
    loss, grad = loss_and_grad(q, pos, queue, labels, queue_labels, tau)
    check_finite_differences(q, pos, queue, labels, queue_labels, tau, grad)
    return {
        "name": name,
        "temperature": tau,
        "query": q,
        "positive": pos,
        "queue": queue,
        "labels": labels,
        "queue_labels": queue_labels,
        "loss": loss,
        "grad_query": grad,
    }


def main():
    rng = random.Random(20210503)
    cases = []
    # Exemplar with duplicate labels in the batch (rows 0 and 2 share class 1), an unlabelled
    # query (row 3), and unlabelled queue slots (the random initial keys).
    queue_labels = [1, 0, 2, 1, UNLABELLED, 3, 1, 0]
    cases.append(case("exemplar_duplicates", rng, 5, 6, 8, 0.2, [1, 0, 1, UNLABELLED, 2], queue_labels))
    # Every negative of row 0 has its class: the row keeps only its positive (loss 0, grad 0).
    cases.append(case("exemplar_all_masked_row", rng, 3, 4, 5, 0.2, [7, 2, 7], [7, 7, 7, 7, 7]))
    # MoCo on the same shapes: no masking.
    cases.append(case("moco", rng, 4, 6, 8, 0.2, None, queue_labels))
    # MoCo v1 temperature.
    cases.append(case("exemplar_v1_temperature", rng, 4, 3, 6, 0.07, [0, 1, 2, 0], [0, 1, 1, 2, 5, 0]))
    print(json.dumps({"cases": cases}, indent=1))


if __name__ == "__main__":
    main()
