# Bench computations in Python: w1_py returns its input, w2_py burns CPU for a given time.
import time


def echo(x):
    return x


def burn(ms):
    end = time.process_time() + ms / 1000.0
    n = 0
    while time.process_time() < end:
        n += 1
    return n
