"""Train a multinomial logistic regression by batch gradient descent.

Input train (CSV); parameters epochs, learning_rate, seed; output model (a
JSON file: classes, features, standardisation and weights); metrics
train_accuracy and final_loss.
"""
import csv
import math
import random

import zen_step

p = zen_step.params()
with open(zen_step.input_path("train"), newline="") as f:
    rows = list(csv.reader(f))
features, rows = rows[0][:-1], rows[1:]
X = [[float(v) for v in r[:-1]] for r in rows]
classes = sorted({r[-1] for r in rows})
y = [classes.index(r[-1]) for r in rows]
n, d, k = len(X), len(features), len(classes)

mean = [sum(x[j] for x in X) / n for j in range(d)]
std = [math.sqrt(sum((x[j] - mean[j]) ** 2 for x in X) / n) or 1.0 for j in range(d)]
Z = [[(x[j] - mean[j]) / std[j] for j in range(d)] + [1.0] for x in X]


def softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


rng = random.Random(p["seed"])
W = [[rng.uniform(-0.01, 0.01) for _ in range(d + 1)] for _ in range(k)]
lr = p["learning_rate"]
for epoch in range(p["epochs"]):
    grad = [[0.0] * (d + 1) for _ in range(k)]
    loss = 0.0
    for z, label in zip(Z, y):
        probs = softmax([sum(w * v for w, v in zip(W[c], z)) for c in range(k)])
        loss -= math.log(max(probs[label], 1e-12))
        for c in range(k):
            g = probs[c] - (1.0 if c == label else 0.0)
            for j in range(d + 1):
                grad[c][j] += g * z[j]
    for c in range(k):
        for j in range(d + 1):
            W[c][j] -= lr * grad[c][j] / n
    loss /= n

correct = sum(
    1 for z, label in zip(Z, y)
    if max(range(k), key=lambda c: sum(w * v for w, v in zip(W[c], z))) == label
)
zen_step.write_json(zen_step.output_path("model"), {
    "classes": classes,
    "features": features,
    "mean": [round(v, 6) for v in mean],
    "std": [round(v, 6) for v in std],
    "weights": [[round(v, 6) for v in row] for row in W],
})
zen_step.write_metrics(train_accuracy=correct / n, final_loss=loss)
print(f"trained on {n} rows: accuracy {correct / n:.3f}, loss {loss:.4f}")
