// `deskgrid doctor`: checks what can be checked from this computer and says, in plain words, what
// is wrong and what to do: the LAN interfaces discovery can use, the join code, the nodes that
// answer on mDNS (other clusters, other versions) and whether this cluster's nodes let a
// submitter in over TLS. Exit 0 when nothing is wrong, 1 when something is.

import { parseCommandArgs, wantsHelp } from './options.js';
import { SECRET_OPTIONS, secretFromOptions } from './secret-input.js';
import { confinementFinding } from '../engine/sandbox/confinement-finding.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { discoveryAllowed } from '../engine/discovery/discovery-switch.js';
import { describeInterfaces, lanInterfaces } from '../engine/discovery/interfaces.js';
import { clusterId } from '../engine/identity/cluster-key.js';
import { shortNodeId } from '../engine/identity/node-identity.js';
import { defaultDataHome } from '../engine/paths.js';
import { resolveJoinCode, settingsFile, type ResolvedJoinCode } from '../engine/settings.js';
import { surveyLan, waitOption, type SurveyedNode } from './nodes-command.js';

/** Clocks further apart than this make results' times disagree visibly. */
const CLOCK_SKEW_LIMIT_MS = 5000;

export const DOCTOR_USAGE = `usage: deskgrid doctor [options]

Checks this computer's network and settings for DeskGrid and says what to fix.

options:
  --secret CODE   the cluster's join code (else DESKGRID_SECRET, else the one saved by deskgrid join)
  --wait S        seconds to listen for nodes on the LAN (default 3)`;

// Longer than `deskgrid nodes`: a diagnosis is worth a second more than a listing.
export const DEFAULT_DOCTOR_WAIT_S = 3;

export interface Finding {
  ok: boolean;
  text: string;
  /** What to do about it (problems), or more detail (ok findings). */
  advice?: string;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${DOCTOR_USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseCommandArgs(
    argv,
    { ...SECRET_OPTIONS, wait: { type: 'string' } },
    DOCTOR_USAGE,
  );
  if (positionals.length > 0) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `unexpected argument "${positionals.join(' ')}"\n${DOCTOR_USAGE}`,
    );
  }
  const waitS = waitOption(values.wait, DEFAULT_DOCTOR_WAIT_S);
  const findings = await diagnose({
    secret: secretFromOptions(values, 'doctor'),
    waitS,
    home: defaultDataHome(),
    onListen: () => process.stderr.write(`listening on the LAN for ${waitS} s...\n`),
  });

  const problems = findings.filter((finding) => !finding.ok).length;
  const lines: string[] = [];
  for (const finding of findings) {
    lines.push(`${finding.ok ? 'ok      ' : 'PROBLEM '} ${finding.text}`);
    if (finding.advice !== undefined) lines.push(`         ${finding.ok ? '' : '-> '}${finding.advice}`);
  }
  lines.push(problems === 0 ? 'no problems found' : `${problems} problem${problems === 1 ? '' : 's'} found`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return problems === 0 ? 0 : 1;
}

/**
 * What the doctor finds on this computer, in order; shared by the command and the UI's doctor
 * panel (which gets it from whoever starts the UI, as the engine does not import the CLI).
 */
export async function diagnose(options: {
  secret?: string | undefined;
  waitS: number;
  home: string;
  onListen?: () => void;
}): Promise<Finding[]> {
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
            text: `join code set (from ${sourceText(joinCode, home)}); cluster id ${clusterId(joinCode.code)}`,
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

function sourceText(joinCode: ResolvedJoinCode, home: string): string {
  switch (joinCode.source) {
    case 'flag':
      return '--secret';
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
