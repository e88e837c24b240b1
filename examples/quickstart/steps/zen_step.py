"""The zen step contract, as the quickstart's steps use it.

zen runs a step as a process from the repository root, and says where things
are in environment variables:

  ZEN_INPUTS   a folder with one entry per input name, e.g. $ZEN_INPUTS/train
  ZEN_OUTPUTS  a folder for exactly one entry per declared output, no more
  ZEN_PARAMS   a JSON file of the step's parameters: name -> value
  ZEN_METRICS  a JSON file the step may write: metric name -> number
  ZEN_RUN_ID, ZEN_PIPELINE, ZEN_STEP, ZEN_COMMIT   for labels and logs

zen caches a step by its code, parameters and inputs, so a step must be
deterministic: same inputs and parameters, byte-identical outputs. Hence fixed
seeds, sorted JSON keys and numbers rounded to 6 digits.
"""
import csv
import json
import os


def params():
    with open(os.environ["ZEN_PARAMS"], encoding="utf-8") as f:
        return json.load(f)


def input_path(name):
    return os.path.join(os.environ["ZEN_INPUTS"], name)


def output_path(name):
    return os.path.join(os.environ["ZEN_OUTPUTS"], name)


def read_csv(name):
    """Input `name`, a CSV file with a header: (header, rows of strings)."""
    with open(input_path(name), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_csv(name, header, rows):
    with open(output_path(name), "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([header] + rows)


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def write_metrics(**metrics):
    write_json(os.environ["ZEN_METRICS"], {k: round(float(v), 6) for k, v in metrics.items()})
