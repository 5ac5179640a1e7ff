"""Run a Python function over many inputs on a DeskGrid cluster.

    import deskgrid

    def square(x):
        return x * x

    if __name__ == "__main__":
        for result in deskgrid.map(square, range(100)):
            print(result["index"], result["value"])

The function must be defined at the top level of a .py file: DeskGrid imports that file in
warm interpreters on every node (its folder travels with it) and calls the function per input.
Standard library only: this package drives the `deskgrid` command (`deskgrid run
FILE.py:FUNCTION`), found on PATH or given as DESKGRID_COMMAND.
"""

from ._client import Batch, DeskGridError, map, submit

__all__ = ["Batch", "DeskGridError", "map", "submit"]
__version__ = "0.1.0"
