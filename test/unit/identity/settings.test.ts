// Saved settings: round trip, atomic private file, damaged files named in the error, and the
// order in which a join code is looked for (flag, DESKGRID_SECRET, settings).

import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { formatJoinCode, generateJoinCode, parseJoinCode } from '../../../shared/join-code.js';
import { loadSettings, resolveJoinCode, saveSettings, settingsFile } from '../../../main/engine/settings.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();
const posix = process.platform !== 'win32';

function home(): string {
  return join(tmp.root, 'home');
}

function canonical(text: string): string {
  const result = parseJoinCode(text);
  if (!result.ok) throw new Error(result.reason);
  return result.code;
}

function thrown(action: () => unknown): DeskGridError {
  try {
    action();
  } catch (error) {
    if (error instanceof DeskGridError) return error;
    throw error;
  }
  throw new Error('nothing was thrown');
}

function typoOf(code: string): string {
  return `${code.slice(0, -1)}${code.endsWith('0') ? '1' : '0'}`;
}

function writeSettings(text: string): void {
  mkdirSync(home(), { recursive: true });
  writeFileSync(settingsFile(home()), text);
}

describe('loadSettings and saveSettings', () => {
  it('gives {} before anything is saved', () => {
    expect(loadSettings(home())).toEqual({});
  });

  it('round trips, merges patches and removes fields set to undefined', () => {
    const code = generateJoinCode();
    expect(saveSettings(home(), { joinCode: code, cores: 3 })).toEqual({ joinCode: code, cores: 3 });
    saveSettings(home(), { name: 'front desk', peers: ['10.0.0.2:7420'] });
    expect(loadSettings(home())).toEqual({
      joinCode: code,
      cores: 3,
      name: 'front desk',
      peers: ['10.0.0.2:7420'],
    });
    saveSettings(home(), { cores: undefined, peers: [] });
    expect(loadSettings(home())).toEqual({ joinCode: code, name: 'front desk', peers: [] });
  });

  it('writes a private file and leaves no temp file behind', () => {
    saveSettings(home(), { cores: 2 });
    saveSettings(home(), { cores: 4 });
    expect(readdirSync(home())).toEqual(['settings.json']);
    if (posix) expect(statSync(settingsFile(home())).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(settingsFile(home()), 'utf8'))).toEqual({ cores: 4 });
  });

  it('keeps keys it does not know (written by a newer version)', () => {
    writeSettings(JSON.stringify({ cores: 2, futureThing: { a: 1 } }));
    saveSettings(home(), { name: 'lab' });
    expect(JSON.parse(readFileSync(settingsFile(home()), 'utf8'))).toEqual({
      cores: 2,
      futureThing: { a: 1 },
      name: 'lab',
    });
  });

  it('saves a join code formatted, and refuses one with a typo', () => {
    const code = generateJoinCode();
    saveSettings(home(), { joinCode: canonical(code).toLowerCase() });
    expect(loadSettings(home()).joinCode).toBe(code);
    const error = thrown(() => saveSettings(home(), { joinCode: typoOf(code) }));
    expect(error.code).toBe(ErrorCode.JoinCode);
    expect(loadSettings(home()).joinCode).toBe(code);
  });

  it('refuses to save invalid values', () => {
    expect(thrown(() => saveSettings(home(), { cores: 0 })).message).toMatch(/cores must be 1 or more/);
    expect(thrown(() => saveSettings(home(), { name: '  ' })).message).toMatch(/name must not be empty/);
  });

  it('reports a damaged file by name, for bad JSON and for bad values', () => {
    const file = settingsFile(home());
    for (const [text, detail] of [
      ['{"cores": 2', /not valid JSON/],
      ['[1, 2]', /does not hold a JSON object/],
      ['{"cores": "many"}', /cores must be a number/],
      ['{"cores": 1.5}', /cores must be a whole number/],
      ['{"peers": "10.0.0.2"}', /peers must be a list/],
    ] as const) {
      writeSettings(text);
      const error = thrown(() => loadSettings(home()));
      expect(error.code).toBe(ErrorCode.Settings);
      expect(error.message).toContain(`the settings file ${file} is damaged`);
      expect(error.message).toMatch(detail);
      expect(error.message).not.toContain('\n');
      expect(() => saveSettings(home(), { cores: 1 })).toThrow(DeskGridError);
    }
  });
});

describe('resolveJoinCode', () => {
  it('is null when no code is given anywhere', () => {
    expect(resolveJoinCode({ env: {}, home: home() })).toBeNull();
    expect(resolveJoinCode({ env: { DESKGRID_SECRET: '  ' }, home: home() })).toBeNull();
  });

  it('takes the flag first, then DESKGRID_SECRET, then the settings', () => {
    const [flag, env, saved] = [generateJoinCode(), generateJoinCode(), generateJoinCode()];
    saveSettings(home(), { joinCode: saved });
    expect(resolveJoinCode({ env: {}, home: home() })).toEqual({
      code: canonical(saved),
      source: 'settings',
    });
    expect(resolveJoinCode({ env: { DESKGRID_SECRET: env }, home: home() })).toEqual({
      code: canonical(env),
      source: 'env',
    });
    expect(
      resolveJoinCode({ flag: flag.toLowerCase(), env: { DESKGRID_SECRET: env }, home: home() }),
    ).toEqual({
      code: canonical(flag),
      source: 'flag',
    });
  });

  it('does not read the settings when a code is given otherwise', () => {
    writeSettings('not json');
    const code = generateJoinCode();
    expect(resolveJoinCode({ flag: code, env: {}, home: home() })?.source).toBe('flag');
    expect(resolveJoinCode({ env: { DESKGRID_SECRET: code }, home: home() })?.source).toBe('env');
    expect(thrown(() => resolveJoinCode({ env: {}, home: home() })).code).toBe(ErrorCode.Settings);
  });

  it('stops at a code that is given but wrong, saying where it came from', () => {
    const good = generateJoinCode();
    const bad = typoOf(good);
    saveSettings(home(), { joinCode: good });
    const typo = 'the join code has a typo: check it again (its check characters do not match)';

    const fromFlag = thrown(() =>
      resolveJoinCode({ flag: bad, env: { DESKGRID_SECRET: good }, home: home() }),
    );
    expect(fromFlag.code).toBe(ErrorCode.JoinCode);
    expect(fromFlag.message).toBe(`${typo} (from --secret)`);

    const fromEnv = thrown(() => resolveJoinCode({ env: { DESKGRID_SECRET: bad }, home: home() }));
    expect(fromEnv.message).toBe(`${typo} (from DESKGRID_SECRET)`);

    expect(thrown(() => resolveJoinCode({ flag: '', env: {}, home: home() })).message).toBe(
      'the join code is empty (from --secret)',
    );

    // A hand-edited settings file: saveSettings would not write this.
    writeSettings(JSON.stringify({ joinCode: formatJoinCode(bad).slice(0, 20) }));
    expect(thrown(() => resolveJoinCode({ env: {}, home: home() })).message).toBe(
      `the join code is too short (16 of 22 characters) (from ${settingsFile(home())})`,
    );
  });
});
