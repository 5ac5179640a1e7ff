# The Python half of a DeskGrid worker: one warm interpreter that imports a computation file
# once and calls one of its functions per job. The Node worker (worker-service/python-host.ts)
# starts it and talks to it over two pipes of its own, fd 3 (to Python) and fd 4 (from Python),
# so that whatever user code prints on stdout or stderr can never corrupt the protocol.
#
# Frames are a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Python says
# `hello` at once (with its version), gets `load` (file, function, folder) and answers `loaded`
# or `load-error`; then `runs` groups arrive and every run gets exactly one `result` (or
# `dropped` after a `cancel`), in arrival order. `progress`, `provisional` and `log` go out while
# a job runs. Standard library only, and syntax Python 3.6 can parse, so an old interpreter
# still gets to say that it is too old.

import collections
import json
import math
import os
import sys
import threading
import time
import traceback

PROTOCOL = 1
MIN_VERSION = (3, 8)
IN_FD = 3
OUT_FD = 4
MAX_OUTPUT_CHARS = 1024 * 1024
# What a job says while it runs (progress, logs) is written together: at most this long late.
FLUSH_AFTER_S = 0.002
FLUSH_BYTES = 256 * 1024

_out = bytearray()
_out_since = None  # when the oldest frame still in _out was queued (time.monotonic())
_out_lock = threading.Condition()


def _frame(message):
    body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return len(body).to_bytes(4, "big") + body


def _write_all(data):
    view = memoryview(data)
    while view:
        written = os.write(OUT_FD, view)
        view = view[written:]


def flush():
    global _out_since
    with _out_lock:
        if _out:
            _write_all(_out)
            del _out[:]
        _out_since = None


def queue_frame(data, now=False):
    """Queues an encoded frame: it goes out now, or within FLUSH_AFTER_S with the next ones."""
    global _out_since
    with _out_lock:
        _out.extend(data)
        if _out_since is None:
            _out_since = time.monotonic()
            _out_lock.notify()
        due = now or len(_out) >= FLUSH_BYTES
    if due:
        flush()


def emit(message, now=False):
    queue_frame(_frame(message), now)


def flusher():
    """Sends results that wait in the buffer while a longer job runs after them."""
    while True:
        with _out_lock:
            while _out_since is None:
                _out_lock.wait()
            delay = _out_since + FLUSH_AFTER_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            flush()


# ---- JSON values: what a job may return ------------------------------------------------------
#
# The rules (README "Python functions"): dict, list, str, int, float, bool and None go as they
# are; tuples become lists; NaN and +/-Infinity become null (as JSON.stringify writes them for a
# JS job); dict keys that are int, float, bool or None become strings the way Python's json
# module writes them ("1", "true", "null"). Everything else fails the job with the type and the
# way to convert it: bytes, sets (their order differs between interpreters, so the same job
# would give different results on different workers), numpy arrays and scalars, dates...


class NotJson(Exception):
    pass


_KEY_TYPES = (str, int, float, bool, type(None))


def _type_name(value):
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else module.split(".")[0] + "." + kind.__qualname__


def _advice(value):
    name = _type_name(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "decode it (.decode()), encode it as text (base64), or write it to a file in ctx.output_dir"
    if isinstance(value, (set, frozenset)):
        return "return sorted(...) or list(...)"
    if name.startswith("numpy.") and hasattr(value, "tolist"):
        return "return .tolist()" if getattr(value, "ndim", 0) else "return .item()"
    if name.startswith("pandas.") and hasattr(value, "to_dict"):
        return "return .to_dict() (or .to_dict('records'))"
    if hasattr(value, "isoformat"):
        return "return .isoformat()"
    if name == "decimal.Decimal" or name == "fractions.Fraction":
        return "return str(...) or float(...)"
    if name == "complex":
        return "return [z.real, z.imag]"
    if hasattr(value, "__next__") or name in ("generator", "range", "map", "filter", "zip"):
        return "return list(...)"
    if hasattr(value, "_asdict"):
        return "return ._asdict()"
    if hasattr(value, "__dataclass_fields__"):
        return "return dataclasses.asdict(...)"
    return "return a dict, list, str, int, float, bool or None built from it"


def _where(path):
    return "".join("[%r]" % (step,) for step in path)


def to_json_value(value, what="returned"):
    """A copy of `value` that json.dumps writes strictly, or NotJson naming the culprit."""
    def convert(item, path, depth):
        if depth > 500:
            raise NotJson("%s a value nested over 500 levels deep (is there a cycle?)" % what)
        if item is None or item is True or item is False or type(item) is str or type(item) is int:
            return item
        if isinstance(item, float):
            return float(item) if math.isfinite(item) else None
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            return str(item) if isinstance(item, str) else int(item)
        if isinstance(item, dict):
            out = {}
            for key, child in item.items():
                if not isinstance(key, _KEY_TYPES):
                    raise NotJson("%s a dict with a %s key %r%s: JSON keys are strings; use str(key)"
                                  % (what, _type_name(key), key, _at(path)))
                if isinstance(key, float) and not math.isfinite(key):
                    raise NotJson("%s a dict with the key %r%s: JSON has no NaN or Infinity" % (what, key, _at(path)))
                name = key if isinstance(key, str) else json.dumps(key)
                out[name] = convert(child, path + [key], depth + 1)
            return out
        if isinstance(item, (list, tuple)):
            return [convert(child, path + [i], depth + 1) for i, child in enumerate(item)]
        raise NotJson("%s %s%s: %s" % (what, _type_name(item), _at(path), _advice(item)))

    return convert(value, [], 0)


def _at(path):
    return " at " + _where(path) if path else ""


def dumps_strict(value):
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


# ---- the job's output ------------------------------------------------------------------------


class Capture(object):
    """Stands in for sys.stdout / sys.stderr while a job runs; keeps at most MAX_OUTPUT_CHARS."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, real):
        self._real = real
        self._parts = []
        self._size = 0
        self._cut = False
        self.buffer = self

    def reset(self):
        self._parts = []
        self._size = 0
        self._cut = False

    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        if self._cut:
            return len(text)
        room = MAX_OUTPUT_CHARS - self._size
        if len(text) <= room:
            self._parts.append(text)
            self._size += len(text)
        else:
            self._parts.append(text[:room])
            self._parts.append("\n[deskgrid: output cut at %d characters]\n" % MAX_OUTPUT_CHARS)
            self._cut = True
        return len(text)

    def getvalue(self):
        return "".join(self._parts)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def fileno(self):
        return self._real.fileno()

    def writelines(self, lines):
        for line in lines:
            self.write(line)


# ---- the computation -------------------------------------------------------------------------


class Computation(object):
    def __init__(self, fn, takes_context, is_async, root):
        self.fn = fn
        self.takes_context = takes_context
        self.is_async = is_async
        self.root = root


def _relative(text, root):
    if not root:
        return text
    prefix = root.rstrip(os.sep) + os.sep
    return text.replace('File "' + prefix, 'File "')


def _error(exc, tb, root, code="DG_ERR_JOB_THREW"):
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = kind.__module__ + "." + name
    try:
        detail = str(exc)
    except Exception:
        detail = "<the exception cannot be printed>"
    message = name + (": " + detail if detail else "")
    stack = "".join(traceback.format_exception(kind, exc, tb))
    return {"code": code, "message": message, "stack": _relative(stack, root)}


def _takes_context(fn):
    import inspect

    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = 0
    for parameter in parameters:
        if parameter.kind == parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


def load(message):
    """Imports the file (its top level runs here, once) and finds the function."""
    import importlib.util
    import inspect

    entry = message["entry"]
    root = message["root"]
    function = message["function"]
    sys.dont_write_bytecode = True  # no __pycache__ in the user's folder or a shipped bundle
    # The deskgrid client refuses to start a batch from inside a worker (a missing main guard).
    os.environ["DESKGRID_WORKER"] = "1"
    sys.path[0:1] = [root]
    os.chdir(root)
    shown = os.path.relpath(entry, root)
    stem = os.path.splitext(os.path.basename(entry))[0]
    name = stem if stem.isidentifier() and stem not in sys.modules else "__deskgrid_computation__"
    try:
        spec = importlib.util.spec_from_file_location(name, entry)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        error = _error(exc, exc.__traceback__.tb_next, root, "DG_ERR_MODULE_LOAD")
        error["message"] = "cannot load %s: %s" % (shown, error["message"])
        return error
    target = module
    for part in function.split("."):
        target = getattr(target, part, None)
        if target is None:
            break
    if not callable(target):
        found = sorted(
            key for key, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == name and not key.startswith("_")
        )
        return {
            "code": "DG_ERR_MODULE_LOAD",
            "message": "%s has no function named %s (%s)"
            % (shown, function, "its functions: " + ", ".join(found) if found else "it defines no function"),
            "stack": None,
        }
    return Computation(target, _takes_context(target), inspect.iscoroutinefunction(target), root)


class Context(object):
    """The job's second argument: the same as ctx in a JS computation."""

    def __init__(self, run, root):
        self.index = run["index"]
        self.attempt = run["attempt"]
        self._id = run["id"]
        self._dir = os.path.join(run["jobDir"], "out")
        self.made_output_dir = False

    @property
    def output_dir(self):
        if not self.made_output_dir:
            os.makedirs(self._dir, exist_ok=True)
            self.made_output_dir = True
        return self._dir

    def progress(self, fraction, note=None):
        try:
            value = float(fraction)
        except (TypeError, ValueError):
            value = 0.0
        if not math.isfinite(value):
            value = 0.0
        emit({"t": "progress", "id": self._id, "fraction": min(1.0, max(0.0, value)),
              "note": None if note is None else str(note)}, now=True)

    def provisional(self, value):
        try:
            emit({"t": "provisional", "id": self._id, "value": value}, now=True)
        except (TypeError, ValueError):
            try:
                converted = to_json_value(value, "ctx.provisional() got")
            except NotJson as error:
                raise TypeError(str(error))
            emit({"t": "provisional", "id": self._id, "value": converted}, now=True)

    def log(self, *values, **options):
        line = options.get("sep", " ").join(str(value) for value in values)
        sys.stderr.write(line + "\n")
        emit({"t": "log", "id": self._id, "line": line}, now=True)


# ---- the loop --------------------------------------------------------------------------------

inbox = collections.deque()
wake = threading.Event()


def _read_exactly(size):
    chunks = []
    while size > 0:
        chunk = os.read(IN_FD, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def reader():
    """Reads frames into the inbox; when the Node worker is gone, ends this interpreter at once."""
    try:
        while True:
            head = _read_exactly(4)
            if head is None:
                break
            body = _read_exactly(int.from_bytes(head, "big"))
            if body is None:
                break
            inbox.append(json.loads(body.decode("utf-8")))
            wake.set()
    finally:
        # Even while a job runs on: the worker that owned it was killed (timeout, cancel).
        os._exit(0)


def run_job(computation, run, stdout, stderr, loop):
    stdout.reset()
    stderr.reset()
    ctx = None
    started = time.time()
    cpu = time.process_time()
    ok = True
    value = None
    error = None
    sys.stdout, sys.stderr = stdout, stderr
    try:
        if "fail" in run:
            ok, error = False, run["fail"]
        elif not isinstance(computation, Computation):
            ok, error = False, computation or {"code": "DG_ERR_PROTOCOL", "message": "no computation was loaded", "stack": None}
        else:
            if computation.takes_context:
                ctx = Context(run, computation.root)
                value = computation.fn(run["input"], ctx)
            else:
                value = computation.fn(run["input"])
            if computation.is_async:
                value = loop().run_until_complete(value)
    except BaseException as exc:
        ok = False
        error = _error(exc, exc.__traceback__.tb_next, getattr(computation, "root", None))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    ended = time.time()
    result = {
        "t": "result",
        "id": run["id"],
        "ok": ok,
        "value": value if ok else None,
        "error": error,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "exitCode": None,
        "startedAt": int(started * 1000),
        "endedAt": int(ended * 1000),
        "hasOutputs": bool(ctx is not None and ctx.made_output_dir and os.listdir(ctx._dir)),
        "cpuMs": (time.process_time() - cpu) * 1000.0,
    }
    try:
        data = _frame(result)
    except (TypeError, ValueError, RecursionError):
        try:
            result["value"] = to_json_value(value)
        except NotJson as problem:
            result.update(ok=False, value=None, error={
                "code": "DG_ERR_NOT_SERIALIZABLE", "message": str(problem), "stack": None})
        data = _frame(result)
    return data


def main():
    if sys.version_info < MIN_VERSION:
        sys.stderr.write("DeskGrid needs Python %d.%d or later; this is %s\n"
                         % (MIN_VERSION + (sys.version.split()[0],)))
        sys.exit(3)
    try:
        import faulthandler

        faulthandler.enable()  # a crash in C code leaves its Python stack on stderr
    except Exception:
        pass
    _die_with_parent()
    threading.Thread(target=reader, name="deskgrid-reader", daemon=True).start()
    threading.Thread(target=flusher, name="deskgrid-flusher", daemon=True).start()
    emit({"t": "hello", "protocol": PROTOCOL, "pid": os.getpid(),
          "version": "%d.%d.%d" % sys.version_info[:3]}, now=True)
    stdout = Capture(sys.__stdout__)
    stderr = Capture(sys.__stderr__)
    computation = None
    pending = collections.deque()
    cancelled = set()
    event_loop = []

    def loop():
        if not event_loop:
            import asyncio

            event_loop.append(asyncio.new_event_loop())
        return event_loop[0]

    while True:
        while inbox:
            message = inbox.popleft()
            kind = message["t"]
            if kind == "runs":
                pending.extend(message["runs"])
            elif kind == "cancel":
                cancelled.add(message["id"])
            elif kind == "load":
                computation = load(message)
                if isinstance(computation, dict):
                    emit({"t": "load-error", "error": computation}, now=True)
                else:
                    emit({"t": "loaded"}, now=True)
        if pending:
            run = pending.popleft()
            if run["id"] in cancelled:
                cancelled.discard(run["id"])
                emit({"t": "dropped", "id": run["id"]})
                continue
            # Each result is written before the next job starts: a job that kills its interpreter
            # (os._exit, a segfault, the OOM killer) would take results still in the buffer with
            # it, and the host would then blame the earliest job without a result, not this one.
            queue_frame(run_job(computation, run, stdout, stderr, loop), now=True)
            continue
        cancelled.clear()
        flush()
        wake.clear()
        if not inbox:
            wake.wait()


def _die_with_parent():
    """On Linux, the kernel kills this interpreter when the Node worker dies, even mid-job in C."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


if __name__ == "__main__":
    main()
