"""evaluate: score the model on the held-out test table.

Contract (zen_step.py explains the environment variables):
  inputs      $ZEN_INPUTS/model     the JSON model that train wrote
              $ZEN_INPUTS/test      CSV with the same header as the train table
  output      $ZEN_OUTPUTS/report   JSON: accuracy, macro f1, per-class precision,
                                    recall, f1 and support, and the confusion matrix
                                    (rows: actual class, columns: predicted class)
  metrics     accuracy, macro_f1
A short summary goes to stdout, which zen keeps as the step's log.
"""
import json
import sys

sys.dont_write_bytecode = True  # write nothing outside ZEN_OUTPUTS, not even steps/__pycache__
import zen_step

with open(zen_step.input_path("model"), encoding="utf-8") as f:
    model = json.load(f)
header, rows = zen_step.read_csv("test")
if not rows:
    sys.exit("evaluate: the test table is empty")
features, classes = model["features"], model["classes"]
if header[:-1] != features:
    sys.exit(f"evaluate: test columns {header[:-1]} are not the model's features {features}")
mean, std = model["standardization"]["mean"], model["standardization"]["std"]
W = [[model["weights"][c][f] for f in features] for c in classes]
b = [model["bias"][c] for c in classes]
k = len(classes)


def predict(x):
    z = [(v - m) / s for v, m, s in zip(x, mean, std)]
    scores = [sum(w * v for w, v in zip(W[c], z)) + b[c] for c in range(k)]
    return max(range(k), key=lambda c: scores[c])


confusion = [[0] * k for _ in range(k)]
for r in rows:
    if r[-1] not in classes:
        sys.exit(f"evaluate: test label {r[-1]!r} is not one of the model's classes {classes}")
    confusion[classes.index(r[-1])][predict([float(v) for v in r[:-1]])] += 1

per_class, f1s = {}, []
for c, name in enumerate(classes):
    tp = confusion[c][c]
    predicted = sum(confusion[i][c] for i in range(k))
    actual = sum(confusion[c])
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    f1s.append(f1)
    per_class[name] = {"precision": round(precision, 6), "recall": round(recall, 6),
                       "f1": round(f1, 6), "support": actual}

accuracy = sum(confusion[c][c] for c in range(k)) / len(rows)
macro_f1 = sum(f1s) / k
zen_step.write_json(zen_step.output_path("report"), {
    "test_rows": len(rows),
    "accuracy": round(accuracy, 6),
    "macro_f1": round(macro_f1, 6),
    "per_class": per_class,
    "confusion_matrix": {"classes": classes, "rows": "actual", "columns": "predicted",
                         "matrix": confusion},
})
zen_step.write_metrics(accuracy=accuracy, macro_f1=macro_f1)

print(f"accuracy {accuracy:.3f}, macro f1 {macro_f1:.3f} on {len(rows)} test rows")
for name in classes:
    v = per_class[name]
    print(f"  {name:<12} precision {v['precision']:.3f}  recall {v['recall']:.3f}  "
          f"f1 {v['f1']:.3f}  ({v['support']} rows)")
