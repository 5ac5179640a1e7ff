// The doctor: checks what can be checked from this computer and says, in plain words, what is
// wrong and what to do: the LAN interfaces discovery can use, the join code, the nodes that answer
// on mDNS (other clusters, other versions, clocks apart) and whether this cluster's nodes let a
// submitter in. One diagnosis for `deskgrid doctor`, the UI's Settings and the desktop app.

import { DeskGridError } from '../../../shared/errors.js';
import { discoveryAllowed } from '../discovery/discovery-switch.js';
import { describeInterfaces, lanInterfaces } from '../discovery/interfaces.js';
import { clusterId } from '../identity/cluster-key.js';
import { shortNodeId } from '../identity/node-identity.js';
import { resolveJoinCode, settingsFile, type ResolvedJoinCode } from '../settings.js';
import { confinementFinding } from '../sandbox/confinement-finding.js';
import { surveyLan, type SurveyedNode } from './lan-survey.js';

/** Clocks further apart than this make results' times disagree visibly. */
const CLOCK_SKEW_LIMIT_MS = 5000;

// Longer than `deskgrid nodes`: a diagnosis is worth a second more than a listing.
export const DEFAULT_DOCTOR_WAIT_S = 3;

export interface Finding {
  ok: boolean;
  text: string;
  /** What to do about it (problems), or more detail (ok findings). */
  advice?: string;
}

export interface DiagnoseOptions {
  /** A join code given to this process (a flag); else DESKGRID_SECRET, else the saved one. */
  secret?: string | undefined;
  /** What the findings call where `secret` came from. Default "--secret". */
  secretSource?: string;
  waitS: number;
  home: string;
  onListen?: () => void;
}

/** What the doctor finds on this computer, in order. Never throws for what it finds. */
export async function diagnose(options: DiagnoseOptions): Promise<Finding[]> {
  const { waitS, home } = options;
  const findings: Finding[] = [];

  const usable = lanInterfaces();
  findings.push(interfaceFinding(usable.map((i) => `${i.name} (${i.address})`)));
  // Proved while the LAN is surveyed: the probe takes as long as starting a worker.
  const confinement = confinementFinding(home);

  let joinCode: ResolvedJoinCode | null = null;
  try {
    joinCode = resolveJoinCode({ flag: options.secret, home });
    findings.push(
      joinCode === null
        ? {
            ok: false,
            text: 'no join code is configured, so this computer cannot tell its cluster from others',
            advice:
              'run "deskgrid join CODE" with your cluster\'s code (or "deskgrid secret" to start a new cluster), or pass --secret CODE',
          }
        : {
            ok: true,
            text: `join code set (from ${sourceText(joinCode, home, options.secretSource)}); cluster id ${clusterId(joinCode.code)}`,
          },
    );
  } catch (error) {
    if (!(error instanceof DeskGridError)) throw error;
    findings.push({
      ok: false,
      text: `the join code cannot be used: ${error.message}`,
      advice: 'check it for typos against the one the cluster uses, then run "deskgrid join CODE" again',
    });
  }

  if (!discoveryAllowed()) {
    findings.push({
      ok: false,
      text: 'LAN discovery is turned off (DESKGRID_DISCOVERY=off): no node can be found on the LAN',
      advice: 'unset DESKGRID_DISCOVERY, or add nodes by address with --peer HOST:PORT',
    });
  } else if (usable.length > 0) {
    options.onListen?.();
    try {
      const nodes = await surveyLan({
        interfaces: usable.map((i) => i.address),
        waitMs: waitS * 1000,
        code: joinCode?.code ?? null,
        home,
        onError: (error) =>
          findings.push({
            ok: false,
            text: `LAN discovery reported an error: ${error.message}`,
            advice: 'check that the network link is up and stable',
          }),
      });
      findings.push(...nodeFindings(nodes, joinCode !== null, waitS));
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      findings.push({
        ok: false,
        text: `cannot listen on the LAN: ${error.message}`,
        advice: 'check that no firewall or other program blocks UDP port 5353 (mDNS)',
      });
    }
  }

  findings.push(await confinement);
  return findings;
}

function interfaceFinding(usable: string[]): Finding {
  const left = describeInterfaces()
    .filter((verdict) => !verdict.usable)
    .map(
      (verdict) =>
        `${verdict.name}${verdict.address === null ? '' : ` (${verdict.address})`}: ${verdict.reason ?? ''}`,
    );
  if (usable.length > 0) {
    return {
      ok: true,
      text: `LAN interfaces usable for discovery: ${usable.join(', ')}`,
      ...(left.length > 0 ? { advice: `not used: ${left.join('; ')}` } : {}),
    };
  }
  return {
    ok: false,
    text: `no LAN interface can be used for discovery (${left.join('; ') || 'none found'})`,
    advice:
      'connect this computer to the office network (cable or Wi-Fi); nodes can still be added by address with --peer HOST:PORT',
  };
}

function nodeFindings(nodes: readonly SurveyedNode[], haveCode: boolean, waitS: number): Finding[] {
  if (nodes.length === 0) {
    return [
      {
        ok: false,
        text:
          'no DeskGrid node answered on the LAN: multicast may be blocked (Wi-Fi client isolation, VLANs, VPN) — ' +
          'add nodes by address with --peer HOST:PORT',
        advice: 'or start one with "deskgrid node" on another computer of this network',
      },
    ];
  }
  const findings: Finding[] = [];
  const live = nodes.filter((node) => node.state !== 'offline');
  findings.push({
    ok: true,
    text: `${count(live.length, 'DeskGrid node')} answered on the LAN within ${waitS} s`,
  });
  if (!haveCode) {
    findings.push({
      ok: false,
      text: `without a join code, none of them can be told to be in your cluster: ${names(live)}`,
      advice: 'pass --secret CODE or run "deskgrid join CODE"',
    });
    return findings;
  }
  const byState = (state: SurveyedNode['state']): SurveyedNode[] =>
    nodes.filter((node) => node.state === state);
  const trusted = byState('trusted');
  const other = byState('other cluster');
  const mismatch = byState('version mismatch');
  const unreachable = byState('unreachable');
  const offline = byState('offline');
  if (trusted.length > 0) {
    findings.push({
      ok: true,
      text: `${count(trusted.length, 'node')} of this cluster ${trusted.length === 1 ? 'answers and accepts' : 'answer and accept'} this computer: ${names(trusted)}`,
    });
  }
  if (other.length > 0) {
    findings.push({
      ok: false,
      text: `${count(other.length, 'node')} ${other.length === 1 ? 'is' : 'are'} in another cluster: ${names(other)}`,
      advice: `if ${other.length === 1 ? 'it' : 'they'} should be in this cluster, check the join code there ("deskgrid join CODE" with the same code as here); otherwise ignore ${other.length === 1 ? 'it' : 'them'}`,
    });
  }
  if (mismatch.length > 0) {
    findings.push({
      ok: false,
      text: `${count(mismatch.length, 'node')} ${mismatch.length === 1 ? 'speaks' : 'speak'} another protocol version: ${names(mismatch, true)}`,
      advice: 'update DeskGrid so that every computer of the cluster runs the same version',
    });
  }
  for (const node of trusted) {
    if (node.clockSkewMs === null || Math.abs(node.clockSkewMs) < CLOCK_SKEW_LIMIT_MS) continue;
    const seconds = Math.round(Math.abs(node.clockSkewMs) / 1000);
    findings.push({
      ok: false,
      text: `the clock of node ${label(node)} is ${seconds} s ${node.clockSkewMs > 0 ? 'ahead of' : 'behind'} this computer's`,
      advice: "turn on network time (NTP) on both computers: jobs' start and end times would not agree",
    });
  }
  for (const node of unreachable) {
    findings.push({
      ok: false,
      text: `node ${label(node)} announces itself but its job port does not answer (${node.detail ?? 'no answer'})`,
      advice: `open TCP port ${node.port} in its firewall, and check that its "deskgrid node" is still running`,
    });
  }
  if (offline.length > 0) {
    findings.push({
      ok: false,
      text: `${count(offline.length, 'node')} stopped answering while listening: ${names(offline)}`,
      advice: 'check that those computers are on and their "deskgrid node" is running',
    });
  }
  if (trusted.length === 0 && unreachable.length === 0) {
    findings.push({
      ok: false,
      text: 'no node of this cluster answered',
      advice: 'start "deskgrid node" (with this join code) on the computers that should share their cores',
    });
  }
  return findings;
}

function sourceText(joinCode: ResolvedJoinCode, home: string, flag = '--secret'): string {
  switch (joinCode.source) {
    case 'flag':
      return flag;
    case 'env':
      return 'DESKGRID_SECRET';
    case 'settings':
      return settingsFile(home);
  }
}

function label(node: SurveyedNode): string {
  return `"${node.name}" (${shortNodeId(node.id)} at ${node.addresses[0] ?? '?'})`;
}

function names(nodes: readonly SurveyedNode[], withVersion = false): string {
  return nodes.map((node) => `${label(node)}${withVersion ? ` DeskGrid ${node.version}` : ''}`).join(', ');
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
