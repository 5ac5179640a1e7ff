// The Settings view's side of the engine: this node's settings as the UI shows them (what runs
// now beside what is saved for the next start), a change to them (sharing at once; peers, the
// join code and the policy for other people's jobs saved for the next start, checked before
// anything is saved), the doctor's findings, and what the data folder keeps, part by part.

import { availableParallelism } from 'node:os';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { formatJoinCode, parseJoinCode } from '../../../shared/join-code.js';
import type { DoctorFinding, OtherJobs, SettingsView, StorageView, UiInput } from '../../../shared/ui-api.js';
import type { Cluster } from '../cluster.js';
import { DEFAULT_DOCTOR_WAIT_S, diagnose } from '../doctor/diagnose.js';
import { clusterId } from '../identity/cluster-key.js';
import { canonicalPeer, loadSettings, resolveJoinCode, saveSettings, type Settings } from '../settings.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface NodeContext {
  cluster: Cluster;
  home: string;
  /** The join code the cluster runs with (canonical form). */
  joinCode: string | null;
}

export function settingsView({ cluster, home, joinCode }: NodeContext): SettingsView {
  const saved = loadSettings(home);
  const running = joinCode ?? savedJoinCode(home);
  const savedCode = saved.joinCode === undefined ? null : parseJoinCode(saved.joinCode);
  const pending = savedCode?.ok && savedCode.code !== running ? formatJoinCode(savedCode.code) : null;
  const sharing = cluster.sharing();
  return {
    nodeId: cluster.nodeId,
    nodeName: cluster.identity.name,
    joinCode: running === null ? null : formatJoinCode(running),
    clusterId: running === null ? null : clusterId(running),
    pendingJoinCode: pending,
    cores: sharing.cores,
    coresAvailable: availableParallelism(),
    accepting: sharing.accepting,
    sharingAdjustable: true,
    peers: saved.peers ?? [],
    dataFolder: home,
    otherJobs: otherJobsOf(cluster.jobConfinement, saved),
  };
}

/** Applies and saves a change; what the settings are then. */
export function changeSettings(node: NodeContext, input: UiInput<'setSettings'>): SettingsView {
  const { cluster, home } = node;
  if (input.joinCode !== undefined) {
    const parsed = parseJoinCode(input.joinCode);
    if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
  }
  // New peers are checked before anything changes, with the parser the node starts with (saved
  // ones stay as they are: a bad one is skipped with a warning at start, never blocks a save).
  const saved = new Set(loadSettings(home).peers ?? []);
  for (const peer of input.peers ?? []) if (!saved.has(peer)) canonicalPeer(peer);
  if (input.cores !== undefined || input.accepting !== undefined) {
    cluster.setSharing({
      ...(input.cores === undefined ? {} : { cores: input.cores }),
      ...(input.accepting === undefined ? {} : { accepting: input.accepting }),
    });
  }
  saveSettings(home, {
    ...(input.cores === undefined ? {} : { cores: input.cores }),
    ...(input.peers === undefined ? {} : { peers: input.peers }),
    ...(input.joinCode === undefined ? {} : { joinCode: input.joinCode }),
    ...(input.jobNetwork === undefined ? {} : { jobNetwork: input.jobNetwork }),
    ...(input.unconfinedJobs === undefined ? {} : { unconfinedJobs: input.unconfinedJobs }),
  });
  return settingsView(node);
}

/** The engine's diagnosis, judged with the join code this node runs with. */
export async function doctorFindings({ home, joinCode }: NodeContext): Promise<DoctorFinding[]> {
  const findings = await diagnose({
    secret: joinCode ?? undefined,
    secretSource: 'the code this node runs with',
    waitS: DEFAULT_DOCTOR_WAIT_S,
    home,
  });
  return findings.map((finding) => ({ ok: finding.ok, text: finding.text, advice: finding.advice ?? null }));
}

export async function storageView(cluster: Cluster): Promise<StorageView> {
  const usage = await cluster.storage.usage();
  return {
    parts: usage.map((part) => ({
      name: part.name,
      bytes: part.bytes,
      entries: part.entries,
      maxBytes: part.maxBytes,
      maxAgeDays: part.maxAgeMs / DAY_MS,
      inUseEntries: part.inUseEntries,
      clearable: part.clearable,
    })),
  };
}

/**
 * How other people's jobs run here and what the owner saved; the confinement is decided at start,
 * so a saved change waits for a restart. Where jobs run confined, the unconfined choice changes
 * nothing until confinement stops working, so it never asks for a restart.
 */
function otherJobsOf(running: Cluster['jobConfinement'], saved: Settings): OtherJobs {
  const savedNetwork = saved.jobNetwork ?? true;
  const savedUnconfined = saved.unconfinedJobs ?? 'refuse';
  if (running === null) {
    return {
      mode: null,
      network: savedNetwork,
      warning: null,
      savedNetwork,
      savedUnconfined,
      restartNeeded: false,
    };
  }
  const policyChanged =
    (running.mode === 'refused' && savedUnconfined === 'accept') ||
    (running.mode === 'unconfined' && savedUnconfined === 'refuse');
  return {
    mode: running.mode,
    network: running.network,
    warning: running.warning,
    savedNetwork,
    savedUnconfined,
    restartNeeded: policyChanged || savedNetwork !== running.network,
  };
}

/** The join code this node would start with; a damaged one is no code to show. */
function savedJoinCode(home: string): string | null {
  try {
    return resolveJoinCode({ home })?.code ?? null;
  } catch {
    return null;
  }
}
