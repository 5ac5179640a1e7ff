"""The client's one job: turn map()/submit() into a `deskgrid run FILE.py:FUNCTION` process and
its --json result lines into dicts, and DeskGrid's own errors into DeskGridError."""

import inspect
import json
import os
import shlex
import shutil
import re
import signal
import subprocess
import sys
import tempfile
import threading

_FLAGS = {
    "timeout": "--timeout",
    "retries": "--retries",
    "max_memory": "--max-memory",
    "cores": "--cores",
    "python": "--python",
    "priority": "--priority",
    "out": "--out",
}
_CANCELLED_EXIT = 130
_ERROR_CODE = re.compile(r"\((DG_ERR_[A-Z_]+)\)$", re.MULTILINE)


class DeskGridError(Exception):
    """DeskGrid refused or could not run the batch (not a job that failed: that is a result)."""

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        self.exit_code = exit_code
        found = _ERROR_CODE.search(message)
        self.code = found.group(1) if found else None


def _command():
    given = os.environ.get("DESKGRID_COMMAND")
    if given:
        return shlex.split(given)
    found = shutil.which("deskgrid")
    if found:
        return [found]
    raise DeskGridError(
        "the deskgrid command was not found: install DeskGrid or set DESKGRID_COMMAND "
        "(e.g. DESKGRID_COMMAND='node /path/to/deskgrid/dist/main/cli/main.js')"
    )


def _computation(function):
    """`/abs/path/file.py:qualname` for a function defined at the top level of a .py file."""
    if os.environ.get("DESKGRID_WORKER"):
        raise DeskGridError(
            "deskgrid.map() ran while a DeskGrid worker imported this file: "
            'put the call under if __name__ == "__main__":'
        )
    if not callable(function):
        raise TypeError("deskgrid.map() takes a function, not %s" % type(function).__name__)
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "")
    if not name or "<" in name:
        raise DeskGridError(
            "%s is not defined at the top level of a file: workers import the file and call "
            "the function by its name" % (name or repr(function))
        )
    try:
        path = inspect.getsourcefile(function)
    except TypeError:
        path = None
    if path is None or not path.endswith(".py") or not os.path.isfile(path):
        raise DeskGridError("%s is not defined in a .py file that workers could import" % name)
    return "%s:%s" % (os.path.abspath(path), name)


def _arguments(options):
    """The command's flags, and its environment: the join code goes there, never on the command
    line, where every local user could read it in the process list."""
    args = []
    env = dict(os.environ)
    options = dict(options)
    options.setdefault("python", sys.executable)
    for key, value in options.items():
        if value is None:
            continue
        if key == "secret":
            env["DESKGRID_SECRET"] = str(value)
        elif key in _FLAGS:
            args += [_FLAGS[key], str(value)]
        elif key == "local":
            if not value:
                args.append("--no-local")
        elif key == "reentrant":
            if not value:
                args.append("--no-reentrant")
        elif key == "peers":
            for peer in [value] if isinstance(value, str) else value:
                args += ["--peer", str(peer)]
        elif key == "requires":
            for name, wanted in dict(value).items():
                for one in wanted if isinstance(wanted, (list, tuple)) else [wanted]:
                    args += ["--require", "%s=%s" % (name, one)]
        else:
            raise TypeError("deskgrid: unknown option %r" % key)
    return args, env


def _write_inputs(inputs):
    """The inputs as a JSON Lines file (one job per line); refuses what JSON cannot carry."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="deskgrid-inputs-", delete=False,
                                         encoding="utf-8")
    count = 0
    try:
        with handle:
            for index, value in enumerate(inputs):
                try:
                    line = json.dumps(value, allow_nan=False, separators=(",", ":"))
                except (TypeError, ValueError) as error:
                    raise TypeError("input %d cannot be sent as JSON: %s" % (index, error))
                handle.write(line + "\n")
                count += 1
    except BaseException:
        os.unlink(handle.name)
        raise
    return handle.name, count


class Batch(object):
    """A running batch: iterate results() as jobs finish, wait() for all, cancel() to stop."""

    def __init__(self, function, inputs, options):
        computation = _computation(function)
        arguments, env = _arguments(options)
        self._inputs, self.total = _write_inputs(inputs)
        self._results = []
        self._consumed = False
        self._cancelled = False
        self._stderr = []
        self._process = None
        if self.total == 0:
            os.unlink(self._inputs)
            return
        command = _command() + ["run", computation, self._inputs, "--split", "jsonl", "--json"] + arguments
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                universal_newlines=True, encoding="utf-8", env=env,
            )
        except OSError as error:
            os.unlink(self._inputs)
            raise DeskGridError("cannot start %s: %s" % (command[0], error))
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stderr(self):
        for line in self._process.stderr:
            self._stderr.append(line)

    def results(self):
        """Yields each job's result (a dict of results.jsonl fields) as it finishes."""
        if self._consumed:
            for result in self._results:
                yield result
            return
        self._consumed = True
        if self._process is None:
            return
        try:
            for line in self._process.stdout:
                if line.strip():
                    result = json.loads(line)
                    self._results.append(result)
                    yield result
        finally:
            code = self._process.wait()
            self._stderr_reader.join()
            if os.path.exists(self._inputs):
                os.unlink(self._inputs)
        said = [line[len("deskgrid: "):].strip() for line in self._stderr if line.startswith("deskgrid: ")]
        # 0: every job done; 130: cancelled; 1: some jobs failed (their results say why), unless
        # the batch itself failed, which the command says in a line ending with its DG_ERR_ code.
        batch_failed = any(_ERROR_CODE.search(line) for line in said)
        if code == 0 or (code == 1 and not batch_failed) or (code == _CANCELLED_EXIT and self._cancelled):
            return
        message = " ".join(said) or "".join(self._stderr).strip() or "deskgrid exited with code %s" % code
        raise DeskGridError(message, code)

    def wait(self):
        """Every result, in input order (runs the batch to its end)."""
        for _ in self.results():
            pass
        return sorted(self._results, key=lambda result: result["index"])

    def cancel(self):
        """Stops the batch: jobs not finished end as cancelled; results() ends."""
        if self._process is None or self._process.poll() is not None:
            return
        self._cancelled = True
        if sys.platform == "win32":
            self._process.terminate()
        else:
            self._process.send_signal(signal.SIGINT)


def submit(function, inputs, **options):
    """Starts `function` over `inputs` on the cluster and returns the Batch."""
    return Batch(function, inputs, options)


def map(function, inputs, **options):  # noqa: A001 - the name users know from the builtin and dispy
    """Yields a result dict per input as jobs finish; raises DeskGridError on DeskGrid's errors.

    The batch starts at once (a bad function or option raises here); leaving the loop early
    cancels what is left of it."""
    return _stream(submit(function, inputs, **options))


def _stream(batch):
    results = batch.results()
    try:
        for result in results:
            yield result
    finally:
        batch.cancel()
        results.close()
