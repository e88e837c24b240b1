"""The zen step contract, for the quickstart's steps.

zen runs a step as a process from the repository root and tells it, in
environment variables, where things are:
  ZEN_INPUTS   a folder with one entry per input name
  ZEN_OUTPUTS  a folder where the step writes one entry per declared output
  ZEN_PARAMS   a JSON file of the step's parameters
  ZEN_METRICS  a JSON file the step may write: metric name -> number
"""
import json
import os


def params():
    with open(os.environ["ZEN_PARAMS"]) as f:
        return json.load(f)


def input_path(name):
    return os.path.join(os.environ["ZEN_INPUTS"], name)


def output_path(name):
    return os.path.join(os.environ["ZEN_OUTPUTS"], name)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def write_metrics(**metrics):
    write_json(os.environ["ZEN_METRICS"], {k: round(v, 6) for k, v in metrics.items()})
