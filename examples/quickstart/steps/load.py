"""load: split a data set into a train and a test table, stratified by class.

Contract (zen_step.py explains the environment variables):
  input       $ZEN_INPUTS/dataset   CSV with a header; the label is the last column
  parameters  seed                  seed of the shuffle
              test_fraction         share of each class held out for testing, 0 < f < 1
  outputs     $ZEN_OUTPUTS/train    CSV, same header, shuffled
              $ZEN_OUTPUTS/test     CSV, same header, shuffled
Rows are copied as text, never re-formatted, so a split is stable to the byte.
"""
import random
import sys

sys.dont_write_bytecode = True  # write nothing outside ZEN_OUTPUTS, not even steps/__pycache__
import zen_step

p = zen_step.params()
seed, test_fraction = p["seed"], p["test_fraction"]
if not 0 < test_fraction < 1:
    sys.exit(f"load: test_fraction must be between 0 and 1, not {test_fraction}")

header, rows = zen_step.read_csv("dataset")
by_class = {}
for row in rows:
    by_class.setdefault(row[-1], []).append(row)

# Hold out the same share of every class, so train and test have the same mix.
rng = random.Random(seed)
train, test = [], []
for label in sorted(by_class):
    group = by_class[label]
    rng.shuffle(group)
    n_test = round(len(group) * test_fraction)
    test += group[:n_test]
    train += group[n_test:]
rng.shuffle(train)
rng.shuffle(test)

zen_step.write_csv("train", header, train)
zen_step.write_csv("test", header, test)
print(f"{len(rows)} rows, {len(by_class)} classes: {len(train)} to train on, {len(test)} to test with")
