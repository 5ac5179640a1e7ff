// The Python client package (python/deskgrid, standard library only), run by Debian's python3:
// deskgrid.map() and deskgrid.submit() drive a real `deskgrid run FILE.py:FUNCTION` (the built
// CLI, named by DESKGRID_COMMAND) and hand back results.jsonl dicts, raise DeskGrid's errors, and
// cancel a running batch.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, cliShellCommand, runCommand, type CliResult } from '../support/run-cli.js';
import { details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const tmp = useTempFolder();

/** Runs a Python program that uses the client, with the repository's package on its path. */
function python(file: string): Promise<CliResult> {
  return runCommand(PYTHON, [file], {
    home: join(tmp.root, 'home'),
    cwd: tmp.root,
    timeLimitMs: 60_000,
    env: {
      PYTHONPATH: join(REPO_ROOT, 'python'),
      DESKGRID_COMMAND: cliShellCommand([]),
      DESKGRID_DISCOVERY: 'off',
    },
  });
}

function lastJson(run: CliResult): unknown {
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines.at(-1) ?? 'null') as unknown;
}

describe('the deskgrid Python package', () => {
  it('map() yields a results.jsonl dict per input as jobs finish; a failed job is a result', async () => {
    const file = tmp.write(
      'squares.py',
      `import json
import deskgrid

def square(x):
    print("got", x)
    if x == 3:
        raise ValueError("bad input %d" % x)
    return x * x

if __name__ == "__main__":
    rows = [r for r in deskgrid.map(square, range(6), cores=2, timeout=60)]
    print(json.dumps(sorted([r["index"], r["input"], r["status"], r["value"], r["stdout"],
                             r["error"] and r["error"]["message"], sorted(r)] for r in rows)))
`,
    );
    const run = await python(file);
    expect(run.code, details(run)).toBe(0);
    const fields = [
      'attempts',
      'endedAt',
      'error',
      'exitCode',
      'index',
      'input',
      'node',
      'startedAt',
      'status',
      'stderr',
      'stdout',
      'value',
    ];
    expect(lastJson(run)).toEqual([
      [0, 0, 'done', 0, 'got 0\n', null, fields],
      [1, 1, 'done', 1, 'got 1\n', null, fields],
      [2, 2, 'done', 4, 'got 2\n', null, fields],
      [3, 3, 'failed', null, 'got 3\n', 'ValueError: bad input 3', fields],
      [4, 4, 'done', 16, 'got 4\n', null, fields],
      [5, 5, 'done', 25, 'got 5\n', null, fields],
    ]);
  });

  it("raises DeskGridError for DeskGrid's errors: a lambda, a missing interpreter, a file without a main guard", async () => {
    tmp.write(
      'unguarded.py',
      `import deskgrid

def double(x):
    return 2 * x

results = list(deskgrid.map(double, [1, 2]))
`,
    );
    const file = tmp.write(
      'errors.py',
      `import json
import deskgrid
import unguarded_caller

def double(x):
    return 2 * x

def attempt(call):
    try:
        call()
        return None
    except deskgrid.DeskGridError as error:
        return str(error)

if __name__ == "__main__":
    print(json.dumps([
        attempt(lambda: deskgrid.map(lambda x: x, [1])),
        attempt(lambda: list(deskgrid.map(double, [1], python="/no/such/python3"))),
        attempt(lambda: list(deskgrid.map(unguarded_caller.double, [1]))),
    ]))
`,
    );
    // unguarded_caller imports cleanly here (the guard is the worker's business).
    tmp.write(
      'unguarded_caller.py',
      'import os\n\nif os.environ.get("DESKGRID_WORKER"):\n    import unguarded  # noqa: F401\n\n\ndef double(x):\n    return 2 * x\n',
    );
    const run = await python(file);
    expect(run.code, details(run)).toBe(0);
    const [lambda, missing, unguarded] = lastJson(run) as string[];
    expect(lambda).toContain(
      '<lambda> is not defined at the top level of a file: workers import the file and call the function by its name',
    );
    expect(missing).toContain('/no/such/python3 is not installed or not on PATH');
    expect(unguarded).toContain(
      'deskgrid.map() ran while a DeskGrid worker imported this file: put the call under if __name__ == "__main__":',
    );
  });

  it('submit() returns a batch to wait on, or to cancel while it runs', async () => {
    const file = tmp.write(
      'slow.py',
      `import json
import os
import time
import deskgrid

def slow(x):
    if x == 0:
        return "quick"
    open(os.path.join(os.environ["MARKS"], str(x)), "w").close()
    time.sleep(600)

if __name__ == "__main__":
    os.environ["MARKS"] = os.path.abspath("marks")
    os.makedirs("marks")
    quick = deskgrid.submit(slow, [0, 0], cores=1).wait()
    batch = deskgrid.submit(slow, [1, 2, 3], cores=1)
    for _ in range(6000):  # bounded: the first job starts within a minute
        if os.listdir("marks"):
            break
        time.sleep(0.01)
    batch.cancel()
    rows = batch.wait()
    print(json.dumps([[r["value"] for r in quick], len(os.listdir("marks")), [r["status"] for r in rows]]))
`,
    );
    const run = await python(file);
    expect(run.code, details(run)).toBe(0);
    const [quick, started, statuses] = lastJson(run) as [string[], number, string[]];
    expect(quick).toEqual(['quick', 'quick']);
    expect(started).toBe(1);
    expect(statuses.every((status) => status !== 'done')).toBe(true);
  });
});
