// `deskgrid secret` and `deskgrid join`: a new code on the last line of stdout; joining checks
// the code for typos (one line, exit 2) and saves it in the settings.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatJoinCode, parseJoinCode } from '../../shared/join-code.js';
import { clusterId } from '../../main/engine/identity/cluster-key.js';
import { splitLines, type CliResult } from '../support/run-cli.js';
import { cliHome, details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const { home, deskgrid } = cliHome(tmp);

function savedSettings(): unknown {
  return JSON.parse(readFileSync(join(home(), 'settings.json'), 'utf8'));
}

async function newCode(): Promise<string> {
  const run = await deskgrid(['secret']);
  expect(run.code, details(run)).toBe(0);
  return splitLines(run.stdout).at(-1) ?? '';
}

function expectOneLineError(run: CliResult, message: string | RegExp): void {
  expect(run.code, details(run)).toBe(2);
  expect(run.stdout).toBe('');
  const lines = splitLines(run.stderr);
  expect(lines, details(run)).toHaveLength(1);
  if (typeof message === 'string') expect(lines[0]).toBe(`deskgrid: ${message}`);
  else expect(lines[0]).toMatch(message);
}

/** The code with its first two adjacent different characters swapped (a typing slip). */
function swapFirstDifferentPair(code: string): string {
  const plain = code.replaceAll('-', '');
  for (let i = 0; i + 1 < plain.length; i += 1) {
    if (plain.charAt(i) !== plain.charAt(i + 1)) {
      return formatJoinCode(plain.slice(0, i) + plain.charAt(i + 1) + plain.charAt(i) + plain.slice(i + 2));
    }
  }
  throw new Error(`no two different characters in ${code}`);
}

describe('deskgrid secret', () => {
  it('prints a new valid join code as its last line', async () => {
    const run = await deskgrid(['secret']);
    expect(run.code, details(run)).toBe(0);
    const code = splitLines(run.stdout).at(-1) ?? '';
    expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}-[0-9A-Z]{2}$/);
    expect(parseJoinCode(code).ok).toBe(true);
    expect(run.stderr).toContain('deskgrid join');
    expect(await newCode()).not.toBe(code);
    // Making a code saves nothing: the computer joins with `deskgrid join`.
    expect(existsSync(join(home(), 'settings.json'))).toBe(false);
  });

  it('takes no arguments', async () => {
    const run = await deskgrid(['secret', 'extra']);
    expect(run.code, details(run)).toBe(2);
    expect(run.stderr).toMatch(/^deskgrid: deskgrid secret takes no arguments/);
  });
});

describe('deskgrid join', () => {
  it('saves the code and names the cluster', async () => {
    const code = await newCode();
    const run = await deskgrid(['join', code]);
    expect(run.code, details(run)).toBe(0);
    expect(run.stdout).toBe(`saved: this node joins cluster ${clusterId(code)}\n`);
    expect(run.stderr).toBe('');
    expect(savedSettings()).toEqual({ joinCode: code });
  });

  it('accepts the code in lower case, in pieces, with misread letters', async () => {
    const code = await newCode();
    const pieces = code.toLowerCase().replaceAll('0', 'o').split('-');
    const run = await deskgrid(['join', ...pieces]);
    expect(run.code, details(run)).toBe(0);
    expect(savedSettings()).toEqual({ joinCode: formatJoinCode(code) });
  });

  it('says when the node moves to another cluster', async () => {
    const first = await newCode();
    const second = await newCode();
    await deskgrid(['join', first]);
    const run = await deskgrid(['join', second]);
    expect(run.code, details(run)).toBe(0);
    expect(run.stderr).toBe(`this node leaves cluster ${clusterId(first)}\n`);
    expect(savedSettings()).toEqual({ joinCode: second });
  });

  it('refuses a typo with one line and exit 2, saving nothing', async () => {
    const code = await newCode();
    const typo = swapFirstDifferentPair(code);
    expect(parseJoinCode(typo).ok).toBe(false);
    expectOneLineError(
      await deskgrid(['join', typo]),
      'the join code has a typo: check it again (its check characters do not match)',
    );
    expectOneLineError(
      await deskgrid(['join', code.slice(0, -3)]),
      'the join code is too short (20 of 22 characters)',
    );
    expectOneLineError(
      await deskgrid(['join', `${code.slice(0, -1)}#`]),
      'the join code contains "#", which is not used in join codes',
    );
    expect(existsSync(join(home(), 'settings.json'))).toBe(false);
  });

  it('takes the code from --secret-file, and refuses it together with --secret', async () => {
    const code = await newCode();
    const missing = await deskgrid(['doctor', '--secret-file', join(home(), 'no-such-file'), '--wait', '0']);
    expect(missing.code, details(missing)).not.toBe(0);
    expect(missing.stderr).toMatch(/the join code file .*no-such-file cannot be read: ENOENT/);
    const both = await deskgrid(['doctor', '--secret', code, '--secret-file', 'x', '--wait', '0']);
    expectOneLineError(both, 'give the join code once: --secret or --secret-file, not both');
  });

  it('asks for a code when none is given', async () => {
    const run = await deskgrid(['join']);
    expect(run.code, details(run)).toBe(2);
    expect(run.stderr).toMatch(/^deskgrid: which join code\?/);
  });
});
