"""A Python function DeskGrid calls once per item of a dataset:

    npx deskgrid run examples/sensors/stats.py:summarize examples/sensors/readings.jsonl

Each worker imports this file once (so LIMITS below is read once per worker, not per job) and
calls summarize(reading) for every line of readings.jsonl. Its sibling module units.py and the
limits.json file travel with it to every node, because the file's folder is its bundle.
"""

import json
import statistics

from units import to_celsius

with open("limits.json") as limits_file:  # relative to this folder: each worker's working folder
    LIMITS = json.load(limits_file)


def summarize(reading, ctx):
    celsius = [to_celsius(value, reading["unit"]) for value in reading["values"]]
    if not celsius:
        raise ValueError("sensor %s sent no values" % reading["sensor"])
    ctx.progress(1.0, reading["sensor"])
    print("summarized", reading["sensor"])  # ends up in the job's stdout in results.jsonl
    return {
        "sensor": reading["sensor"],
        "mean": round(statistics.mean(celsius), 2),
        "max": max(celsius),
        "too_hot": max(celsius) > LIMITS["max_celsius"],
    }
