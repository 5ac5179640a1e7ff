// The node's saved settings, <home>/settings.json: the join code, a display name, the cores to
// share and known peers. Read with validation (a damaged file is an error naming it, never
// silently reset) and written atomically, so a crash mid-write leaves the old file whole.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { formatJoinCode, parseJoinCode } from '../../shared/join-code.js';
import { formatPeerAddress, parsePeerAddress } from '../../shared/peer-address.js';

export const SETTINGS_FILE = 'settings.json';

export interface Settings {
  /** The cluster's join code, as `formatJoinCode` writes it. */
  joinCode?: string;
  /** The name other nodes and the app show for this one; default: the host name. */
  name?: string;
  /** Cores to share with the cluster; default: all. */
  cores?: number;
  /**
   * Addresses of nodes to contact besides the ones found on the local network, saved as
   * `[NODE-ID@]HOST:PORT`; an entry edited by hand into something else is skipped with a warning.
   */
  peers?: string[];
  /** Whether other people's confined jobs may use the network (`--job-network`); default: yes. */
  jobNetwork?: boolean;
  /** Where their jobs cannot be confined: refuse them (default) or run them unconfined. */
  unconfinedJobs?: 'refuse' | 'accept';
}

/** Fields to change; a field set to undefined is removed from the file. */
export type SettingsPatch = { [K in keyof Settings]?: Settings[K] | undefined };

export type JoinCodeSource = 'flag' | 'env' | 'settings';

export interface ResolvedJoinCode {
  /** Canonical form: 22 characters, no dashes. */
  code: string;
  source: JoinCodeSource;
}

// Loose: keys written by a newer DeskGrid survive a save by this one.
const SettingsSchema = v.looseObject({
  joinCode: v.optional(v.string('joinCode must be a text')),
  name: v.optional(
    v.pipe(
      v.string('name must be a text'),
      v.trim(),
      v.minLength(1, 'name must not be empty'),
      v.maxLength(100, 'name must be at most 100 characters'),
    ),
  ),
  cores: v.optional(
    v.pipe(
      v.number('cores must be a number'),
      v.integer('cores must be a whole number'),
      v.minValue(1, 'cores must be 1 or more'),
    ),
  ),
  peers: v.optional(
    v.array(
      v.pipe(v.string('peers must hold texts'), v.minLength(1, 'peers must not hold empty texts')),
      'peers must be a list',
    ),
  ),
  jobNetwork: v.optional(v.boolean('jobNetwork must be true or false')),
  unconfinedJobs: v.optional(v.picklist(['refuse', 'accept'], 'unconfinedJobs must be "refuse" or "accept"')),
});

type StoredSettings = v.InferOutput<typeof SettingsSchema>;

export function settingsFile(home: string): string {
  return join(home, SETTINGS_FILE);
}

/** The saved settings; none saved yet gives `{}`. */
export function loadSettings(home: string): Settings {
  const { joinCode, name, cores, peers, jobNetwork, unconfinedJobs } = readStored(home);
  return {
    ...(joinCode === undefined ? {} : { joinCode }),
    ...(name === undefined ? {} : { name }),
    ...(cores === undefined ? {} : { cores }),
    ...(peers === undefined ? {} : { peers }),
    ...(jobNetwork === undefined ? {} : { jobNetwork }),
    ...(unconfinedJobs === undefined ? {} : { unconfinedJobs }),
  };
}

/**
 * The owner's saved choices about other people's jobs, ready to spread into the serve options of
 * a start (the app's; the CLI's flags override them): unset ones keep the node's defaults.
 */
export function savedJobChoices(home: string): Pick<Settings, 'jobNetwork' | 'unconfinedJobs'> {
  const { jobNetwork, unconfinedJobs } = loadSettings(home);
  return {
    ...(jobNetwork === undefined ? {} : { jobNetwork }),
    ...(unconfinedJobs === undefined ? {} : { unconfinedJobs }),
  };
}

/** Merges `patch` into the saved settings and writes them; returns the settings now saved. */
export function saveSettings(home: string, patch: SettingsPatch): Settings {
  const stored = readStored(home);
  const merged: Record<string, unknown> = Object.fromEntries(
    Object.entries({ ...stored, ...patch }).filter(([, value]) => value !== undefined),
  );
  if (typeof merged['joinCode'] === 'string') {
    const parsed = parseJoinCode(merged['joinCode']);
    if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
    merged['joinCode'] = formatJoinCode(parsed.code);
  }
  // New peers are checked and written in their one form (the port filled in); entries already in
  // the file are kept as they are, so a bad old one never blocks saving the rest.
  if (patch.peers !== undefined) {
    const before = new Set(stored.peers ?? []);
    merged['peers'] = patch.peers.map((peer) => (before.has(peer) ? peer : canonicalPeer(peer)));
  }
  const result = v.safeParse(SettingsSchema, merged);
  if (!result.success) {
    throw new DeskGridError(ErrorCode.Usage, `cannot save settings: ${describeIssues(result.issues)}`);
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeAtomically(settingsFile(home), `${JSON.stringify(result.output, null, 2)}\n`);
  return loadSettings(home);
}

/**
 * The join code to use: the --secret flag, else DESKGRID_SECRET, else the saved settings; null
 * when none is given. A code that is given but wrong is an error, not a fall-through to the
 * next source: running with a different secret than the one typed would be worse than stopping.
 */
export function resolveJoinCode(options: {
  flag?: string | undefined;
  env?: NodeJS.ProcessEnv;
  home: string;
}): ResolvedJoinCode | null {
  const env = options.env ?? process.env;
  if (options.flag !== undefined) return parsed(options.flag, 'flag', '--secret');
  // An empty variable counts as unset, as shells make it easy to export one by accident.
  const fromEnv = env['DESKGRID_SECRET'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parsed(fromEnv, 'env', 'DESKGRID_SECRET');
  const saved = loadSettings(options.home).joinCode;
  if (saved !== undefined) return parsed(saved, 'settings', settingsFile(options.home));
  return null;
}

/** `HOST[:PORT]` and the like as saved: `[NODE-ID@]HOST:PORT`; a bad address is a usage error. */
export function canonicalPeer(text: string): string {
  const parsed = parsePeerAddress(text);
  if (!parsed.ok) throw new DeskGridError(ErrorCode.Usage, parsed.reason);
  return formatPeerAddress(parsed.peer);
}

function parsed(text: string, source: JoinCodeSource, label: string): ResolvedJoinCode {
  const result = parseJoinCode(text);
  if (!result.ok) throw new DeskGridError(ErrorCode.JoinCode, `${result.reason} (from ${label})`);
  return { code: result.code, source };
}

function readStored(home: string): StoredSettings {
  const file = settingsFile(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new DeskGridError(
      ErrorCode.Settings,
      `the settings file ${file} cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw damaged(file, `it is not valid JSON (${(error as Error).message})`, error);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw damaged(file, 'it does not hold a JSON object', undefined);
  }
  const result = v.safeParse(SettingsSchema, json);
  if (!result.success) throw damaged(file, describeIssues(result.issues), undefined);
  return result.output;
}

function damaged(file: string, detail: string, cause: unknown): DeskGridError {
  return new DeskGridError(
    ErrorCode.Settings,
    `the settings file ${file} is damaged: ${detail}; fix or delete it`,
    cause === undefined ? undefined : { cause },
  );
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues.map((issue) => issue.message).join('; ');
}

/** Temp file + fsync + rename: readers see the old file or the new one, never half of one. */
export function writeAtomically(file: string, text: string): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
