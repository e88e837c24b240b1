"""Evaluate the model on the test table.

Inputs model (JSON) and test (CSV); output report (JSON: accuracy,
per-class precision, recall and f1, confusion matrix); metrics accuracy and
macro_f1.
"""
import csv
import json

import zen_step

with open(zen_step.input_path("model")) as f:
    model = json.load(f)
with open(zen_step.input_path("test"), newline="") as f:
    rows = list(csv.reader(f))[1:]

classes = model["classes"]
k = len(classes)


def predict(x):
    z = [(v - m) / s for v, m, s in zip(x, model["mean"], model["std"])] + [1.0]
    scores = [sum(w * v for w, v in zip(row, z)) for row in model["weights"]]
    return max(range(k), key=lambda c: scores[c])


confusion = [[0] * k for _ in range(k)]
for r in rows:
    confusion[classes.index(r[-1])][predict([float(v) for v in r[:-1]])] += 1

per_class = {}
for c, name in enumerate(classes):
    tp = confusion[c][c]
    predicted = sum(confusion[i][c] for i in range(k))
    actual = sum(confusion[c])
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_class[name] = {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6)}

accuracy = sum(confusion[c][c] for c in range(k)) / len(rows)
macro_f1 = sum(v["f1"] for v in per_class.values()) / k
zen_step.write_json(zen_step.output_path("report"), {
    "accuracy": round(accuracy, 6),
    "macro_f1": round(macro_f1, 6),
    "per_class": per_class,
    "confusion": {"classes": classes, "matrix": confusion},
})
zen_step.write_metrics(accuracy=accuracy, macro_f1=macro_f1)
print(f"accuracy {accuracy:.3f}, macro f1 {macro_f1:.3f} on {len(rows)} test rows")
for name in classes:
    v = per_class[name]
    print(f"  {name:<12} precision {v['precision']:.3f}  recall {v['recall']:.3f}  f1 {v['f1']:.3f}")
