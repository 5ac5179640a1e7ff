# Python functions for the bench: w1_py returns its input (throughput), w2_py burns about
# `ms` of CPU and returns the CPU time it used (efficiency), like echo.mjs and burn.mjs.
import time


def echo(x):
    return x


def burn(ms):
    before = time.process_time()
    until = time.perf_counter() + ms / 1000.0
    x = 0.0
    while time.perf_counter() < until:
        x += (x + 1) ** 0.5
    return {"cpuMs": (time.process_time() - before) * 1000.0, "x": x}
