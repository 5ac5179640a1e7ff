// The lock file itself, on a real file system: one holder at a time, refusals that name it, a
// half-written (unreadable) lock waited for and then taken over, and release that removes only
// its own record.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FolderLock } from '../../../main/engine/store/folder-lock.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { until } from '../../support/until.js';

const tmp = useTempFolder();
const refusal = (holder: string) => `held by ${holder}`;

describe('FolderLock', () => {
  it('has one holder at a time and is free again once released', () => {
    const file = join(tmp.root, 'x.lock');
    const lock = FolderLock.acquire(file, refusal, 'serving on port 1');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    expect(() => FolderLock.acquire(file, refusal)).toThrow(
      expect.objectContaining({
        code: 'DG_ERR_LOCKED',
        message: expect.stringMatching(
          new RegExp(`^held by pid ${process.pid} on .* UTC, serving on port 1$`),
        ),
      }),
    );
    lock.release();
    lock.release();
    expect(existsSync(file)).toBe(false);
    FolderLock.acquire(file, refusal).release();
    // Only the lock file is left behind while held, nothing after.
    expect(existsSync(file)).toBe(false);
  });

  it('waits for a lock being written, and takes over one that stays unreadable', () => {
    const file = join(tmp.root, 'x.lock');
    writeFileSync(file, '');
    expect(() => FolderLock.acquire(file, refusal)).toThrow(
      expect.objectContaining({ code: 'DG_ERR_LOCKED', message: expect.stringContaining('being taken') }),
    );
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const lock = FolderLock.acquire(file, refusal);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
  });

  it('does not remove a lock that another process put in its place', () => {
    const file = join(tmp.root, 'x.lock');
    const lock = FolderLock.acquire(file, refusal);
    const theirs = JSON.stringify({
      pid: 1,
      host: 'elsewhere',
      startedAt: 0,
      processStart: null,
      bootId: null,
    });
    writeFileSync(file, theirs);
    lock.release();
    expect(readFileSync(file, 'utf8')).toBe(theirs);
  });

  it.skipIf(!existsSync('/proc/self/stat'))(
    'counts a killed process its parent has not reaped yet (a zombie) as gone',
    async () => {
      // `sleep 0` ends at once, and the exec'd `sleep 5` that is its parent never reaps it.
      const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      try {
        const pid = Number(
          await new Promise<string>((resolve) =>
            parent.stdout.once('data', (data: Buffer) => resolve(data.toString())),
          ),
        );
        await until(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), 'the zombie');
        const file = join(tmp.root, 'x.lock');
        writeFileSync(
          file,
          JSON.stringify({ pid, host: hostname(), startedAt: 0, processStart: null, bootId: null }),
        );
        FolderLock.acquire(file, refusal).release();
      } finally {
        parent.kill('SIGKILL');
      }
    },
  );
});
