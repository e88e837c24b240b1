"""Split the data set into train and test tables, stratified by class.

Input dataset (CSV with a header, label in the last column); parameters
seed and test_fraction; outputs train and test (CSV).
"""
import csv
import random

import zen_step

p = zen_step.params()
with open(zen_step.input_path("dataset"), newline="") as f:
    rows = list(csv.reader(f))
header, rows = rows[0], rows[1:]

by_class = {}
for row in rows:
    by_class.setdefault(row[-1], []).append(row)

rng = random.Random(p["seed"])
train, test = [], []
for label in sorted(by_class):
    group = by_class[label]
    rng.shuffle(group)
    n_test = round(len(group) * p["test_fraction"])
    test += group[:n_test]
    train += group[n_test:]

for name, part in (("train", train), ("test", test)):
    with open(zen_step.output_path(name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(part)
print(f"{len(train)} rows to train on, {len(test)} to test with")
