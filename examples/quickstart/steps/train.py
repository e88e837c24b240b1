"""train: fit a multinomial logistic regression by batch gradient descent.

Pure Python, no numpy: small enough to read, and fast enough for Iris.

Contract (zen_step.py explains the environment variables):
  input       $ZEN_INPUTS/train     CSV with a header; numeric features, label last
  parameters  epochs                passes of gradient descent over the whole table
              learning_rate         step size
              seed                  seed of the initial weights
  output      $ZEN_OUTPUTS/model    JSON: features, classes, standardization
                                    (mean, std) and, per class, weights and bias
  metrics     train_accuracy, final_loss (mean cross-entropy on the train table)
"""
import math
import random
import sys

sys.dont_write_bytecode = True  # write nothing outside ZEN_OUTPUTS, not even steps/__pycache__
import zen_step

p = zen_step.params()
header, rows = zen_step.read_csv("train")
features = header[:-1]
classes = sorted({r[-1] for r in rows})
X = [[float(v) for v in r[:-1]] for r in rows]
y = [classes.index(r[-1]) for r in rows]
n, d, k = len(X), len(features), len(classes)

# Standardize each feature to mean 0, std 1; the model keeps mean and std,
# so that evaluate (or a server) applies the same transformation.
mean = [round(sum(x[j] for x in X) / n, 6) for j in range(d)]
std = [round(math.sqrt(sum((x[j] - mean[j]) ** 2 for x in X) / n), 6) or 1.0 for j in range(d)]
Z = [[(x[j] - mean[j]) / std[j] for j in range(d)] for x in X]


def probabilities(W, b, z):
    """Softmax of the class scores W·z + b."""
    scores = [sum(w * v for w, v in zip(W[c], z)) + b[c] for c in range(k)]
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    total = sum(e)
    return [v / total for v in e]


def loss_and_accuracy(W, b):
    loss, correct = 0.0, 0
    for z, label in zip(Z, y):
        probs = probabilities(W, b, z)
        loss -= math.log(max(probs[label], 1e-12))
        correct += max(range(k), key=lambda c: probs[c]) == label
    return loss / n, correct / n


rng = random.Random(p["seed"])
W = [[rng.uniform(-0.01, 0.01) for _ in range(d)] for _ in range(k)]
b = [0.0] * k
epochs, lr = p["epochs"], p["learning_rate"]
for epoch in range(1, epochs + 1):
    # The gradient of the mean cross-entropy: (p - onehot(y)) · z, over all rows.
    gW = [[0.0] * d for _ in range(k)]
    gb = [0.0] * k
    for z, label in zip(Z, y):
        probs = probabilities(W, b, z)
        for c in range(k):
            g = probs[c] - (c == label)
            gb[c] += g
            row = gW[c]
            for j in range(d):
                row[j] += g * z[j]
    for c in range(k):
        b[c] -= lr * gb[c] / n
        for j in range(d):
            W[c][j] -= lr * gW[c][j] / n
    if epoch % 100 == 0 and epoch < epochs:
        print(f"epoch {epoch}: loss {loss_and_accuracy(W, b)[0]:.4f}")

# Round once, and report on exactly the numbers the model file holds.
W = [[round(v, 6) for v in row] for row in W]
b = [round(v, 6) for v in b]
loss, accuracy = loss_and_accuracy(W, b)
zen_step.write_json(zen_step.output_path("model"), {
    "kind": "multinomial logistic regression",
    "features": features,
    "classes": classes,
    "standardization": {"mean": mean, "std": std},
    "weights": {c: dict(zip(features, W[i])) for i, c in enumerate(classes)},
    "bias": dict(zip(classes, b)),
})
zen_step.write_metrics(train_accuracy=accuracy, final_loss=loss)
print(f"epoch {epochs}: loss {loss:.4f}, train accuracy {accuracy:.3f} on {n} rows")
