// `deskgrid node`: runs a headless node that shares this machine's cores with the cluster
// until SIGINT or SIGTERM. On the signal it stops taking jobs, hands back the ones it had not
// started, lets the running ones finish, and exits.

import { networkInterfaces } from 'node:os';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import {
  activityFileSignals,
  OwnerController,
  DEFAULT_OWNER_SETTINGS,
  parseShareMode,
  UiServer,
  defaultRendererDir,
  UiService,
} from '../engine/entry/host.js';
import {
  Cluster,
  lanInterfaces,
  type LanInterface,
  discoveryAllowed,
  shortNodeId,
  defaultDataHome,
  loadSettings,
  resolveJoinCode,
} from '../engine/index.js';

import { numberOption, parseCommandArgs, wantsHelp } from './options.js';
import { SECRET_OPTIONS, SECRET_USAGE_LINES, secretFromOptions } from './secret-input.js';

export const NODE_USAGE = `usage: deskgrid node [options]

Shares this machine's cores with the cluster until stopped (Ctrl-C or SIGTERM).

options:
${SECRET_USAGE_LINES}
  --port P        TCP port of the job server (default ${DEFAULT_NODE_PORT})
  --listen IP     address to listen on (default: all)
  --cores N       cores to share (default: all)
  --data DIR      data folder (default: DESKGRID_HOME, else the per-user app data folder)
  --no-discovery  do not announce this node on the LAN (mDNS); submitters then need --peer
  --share MODE    when to run other people's jobs: always (default), when-idle[=SECONDS] (needs
                  --owner-activity) or hours=FROM-TO (local time, like hours=18-8); when sharing
                  stops, their running jobs are suspended, and handed back after 10 minutes
  --job-network on|off
                  whether other people's jobs may use the network (default: as saved in
                  the UI's settings, else on)
  --unconfined-jobs refuse|accept
                  where this computer cannot confine other people's jobs (no bubblewrap,
                  Windows): refuse them (default, unless the UI's settings saved accept) or
                  run them unconfined, able to read and change whatever your user can
  --owner-activity FILE
                  the owner's last input is this file's modification time (touch it on input)
  --max-per-submitter N
                  cores one submitter may use at once (default: all; submitters
                  with work always share the cores in turns)
  --keep-days D   days a result waits for a submitter that vanished (default 7)
  --keep-mb MB    disk for such results (default 1024)
  --ui            also serve the DeskGrid UI to a browser on this computer (the address
                  to open, with its access token, is printed at start); batches started
                  there run on every node of the cluster this node finds or is given
  --ui-port P     port of the UI (default: a random free port; it listens on 127.0.0.1 only)
  --peer HOST[:PORT]  a node to run the UI's batches on besides those found on the LAN
                  (repeat for more; peers saved with deskgrid peers add are used too)`;

export async function nodeCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${NODE_USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      ...SECRET_OPTIONS,
      'job-network': { type: 'string' },
      'unconfined-jobs': { type: 'string' },
      port: { type: 'string' },
      listen: { type: 'string' },
      cores: { type: 'string' },
      data: { type: 'string' },
      'no-discovery': { type: 'boolean', default: false },
      share: { type: 'string' },
      'owner-activity': { type: 'string' },
      ui: { type: 'boolean', default: false },
      'ui-port': { type: 'string' },
      peer: { type: 'string', multiple: true },
      'max-per-submitter': { type: 'string' },
      'keep-days': { type: 'string' },
      'keep-mb': { type: 'string' },
    },
    NODE_USAGE,
  );
  if (positionals.length > 0) {
    throw new DeskGridError(ErrorCode.Usage, `unexpected argument "${positionals.join(' ')}"\n${NODE_USAGE}`);
  }
  const home = values.data ?? defaultDataHome();
  const joinCode = resolveJoinCode({ flag: secretFromOptions(values, 'node'), home });
  if (joinCode === null) {
    throw new DeskGridError(
      ErrorCode.JoinCode,
      'no join code: pass --secret CODE, set DESKGRID_SECRET, or save one with deskgrid join CODE (deskgrid secret makes a new one)',
    );
  }
  const port =
    numberOption('--port', values.port, { min: 0, integer: true, inclusive: true }) ?? DEFAULT_NODE_PORT;
  // The cores chosen in the UI's settings last, unless --cores says otherwise.
  const cores =
    numberOption('--cores', values.cores, { min: 1, integer: true, inclusive: true }) ??
    loadSettings(home).cores;
  const uiPort = numberOption('--ui-port', values['ui-port'], { min: 0, integer: true, inclusive: true });
  if (!values.ui && (uiPort !== undefined || values.peer !== undefined)) {
    throw new DeskGridError(ErrorCode.Usage, `--ui-port and --peer go with --ui\n${NODE_USAGE}`);
  }
  const listen = values.listen ?? '0.0.0.0';
  const mode = values.share === undefined ? null : parseShareMode(values.share);
  const activityFile = values['owner-activity'];
  if (mode?.kind === 'when-idle' && activityFile === undefined) {
    throw new DeskGridError(
      ErrorCode.Usage,
      'a headless node cannot see its owner: --share when-idle needs --owner-activity FILE',
    );
  }
  const maxPerSubmitter = numberOption('--max-per-submitter', values['max-per-submitter'], {
    min: 1,
    integer: true,
    inclusive: true,
  });
  const keepDays = numberOption('--keep-days', values['keep-days'], { min: 0, integer: false });
  const keepMb = numberOption('--keep-mb', values['keep-mb'], { min: 0, integer: false });
  // A flag wins over what the UI's settings saved, for this start.
  const saved = loadSettings(home);
  const jobNetwork =
    choice('--job-network', values['job-network'], ['on', 'off'] as const) ??
    (saved.jobNetwork === false ? 'off' : 'on');
  const unconfinedJobs =
    choice('--unconfined-jobs', values['unconfined-jobs'], ['refuse', 'accept'] as const) ??
    saved.unconfinedJobs;
  const interfaces = values['no-discovery'] || !discoveryAllowed() ? [] : announceOn(listen);
  let cluster: Cluster;
  try {
    cluster = await Cluster.start({
      home,
      secret: joinCode.code,
      serve: {
        host: listen,
        port,
        ...(maxPerSubmitter === undefined ? {} : { maxPerSubmitter }),
        ...(keepDays === undefined ? {} : { keepDays }),
        ...(keepMb === undefined ? {} : { keepMb }),
        ...(unconfinedJobs === undefined ? {} : { unconfinedJobs }),
        jobNetwork: jobNetwork === 'on',
      },
      // The node announces itself and keeps a view of the others, to tell its submitters; with
      // the UI it submits batches too, and uses them.
      ...(interfaces.length === 0
        ? {}
        : { discover: { interfaces: interfaces.map((found) => found.address), use: values.ui } }),
      ...(values.ui
        ? { peers: values.peer ?? [], savedPeers: loadSettings(home).peers ?? [], rememberNodes: true }
        : {}),
      ...(cores === undefined ? {} : { cores }),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new DeskGridError(
        ErrorCode.Usage,
        `port ${port} is already in use: is another node running? Use --port`,
      );
    }
    if ((error as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') {
      throw new DeskGridError(ErrorCode.Usage, `${values.listen ?? ''} is not an address of this machine`);
    }
    throw error;
  }
  for (const warning of cluster.warnings) process.stderr.write(`deskgrid: warning: ${warning}\n`);
  const address = cluster.address;
  const shown = address?.host === '0.0.0.0' ? localAddresses() : [address?.host ?? '?'];
  process.stdout.write(
    `deskgrid node ${shortNodeId(cluster.nodeId)} "${cluster.identity.name}" sharing ${cluster.stats().cores} cores\n` +
      `id: ${cluster.nodeId}\n` +
      `listening on ${shown.map((host) => `${host}:${address?.port ?? port}`).join(', ')}\n` +
      `other people's jobs: ${describeConfinement(cluster.jobConfinement?.mode ?? 'refused', jobNetwork)}\n`,
  );

  if (interfaces.length > 0) {
    process.stdout.write(
      `announcing on the LAN: ${interfaces.map((found) => `${found.name} (${found.address})`).join(', ')}\n`,
    );
  }
  let ui: Awaited<ReturnType<typeof startUi>> | null = null;
  try {
    if (values.ui) ui = await startUi(cluster, home, joinCode.code, uiPort);
  } catch (error) {
    await cluster.destroy();
    throw error;
  }

  const owner =
    mode === null
      ? null
      : new OwnerController(
          cluster,
          { ...DEFAULT_OWNER_SETTINGS, mode },
          activityFile === undefined
            ? () => ({ idleSeconds: Number.POSITIVE_INFINITY, onBattery: false, sleeping: false })
            : activityFileSignals(activityFile),
        ).start();
  owner?.on('change', (decision) => {
    process.stdout.write(
      decision.reason === 'sharing'
        ? 'sharing\n'
        : `not sharing (${decision.reason}): others' jobs ${decision.running}\n`,
    );
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`${signal}: finishing running jobs, then stopping\n`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  owner?.stop();
  // Jobs stopped for the owner would never finish here: they run elsewhere instead.
  if (owner !== null && owner.decision?.running !== 'run') cluster.handBackOthers();
  const forced = setTimeout(() => {
    process.stderr.write('deskgrid: jobs did not finish in time; stopping them\n');
    void cluster.destroy();
  }, 30_000);
  forced.unref();
  if (ui) {
    ui.service.close();
    await ui.server.close();
  }
  // close() says goodbye on the LAN first, so peers stop sending work before the server closes.
  await cluster.close();
  clearTimeout(forced);
  process.stdout.write('stopped\n');
  return 0;
}

/** The LAN interfaces a node listening on `listen` announces itself on (all of them for 0.0.0.0). */
function announceOn(listen: string): LanInterface[] {
  const interfaces = lanInterfaces().filter(
    (candidate) => listen === '0.0.0.0' || candidate.address === listen,
  );
  if (interfaces.length === 0) {
    process.stderr.write(
      `deskgrid: warning: ${listen} is on no LAN interface that can multicast: not announced on the LAN ` +
        '(submitters need --peer)\n',
    );
  }
  return interfaces;
}

function localAddresses(): string[] {
  const found: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? [])
      if (entry.family === 'IPv4' && !entry.internal) found.push(entry.address);
  }
  return found.length > 0 ? found : ['127.0.0.1'];
}

async function startUi(
  cluster: Cluster,
  home: string,
  code: string,
  port: number | undefined,
): Promise<{ service: UiService; server: UiServer }> {
  const service = new UiService({
    cluster,
    home,
    joinCode: code,
  });
  const resumed = service.resumeUnfinished();
  if (resumed > 0)
    process.stdout.write(`resuming ${resumed} batch(es) started here before the node stopped\n`);
  let server: UiServer;
  try {
    server = await UiServer.start({
      service,
      rendererDir: defaultRendererDir(),
      ...(port === undefined ? {} : { port }),
    });
  } catch (error) {
    service.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new DeskGridError(
        ErrorCode.Usage,
        `UI port ${port ?? 0} is already in use: choose another with --ui-port`,
      );
    }
    throw error;
  }
  process.stdout.write(`UI: open ${server.url}\n`);
  return { service, server };
}

/** One of a few words, or a usage error naming them. */
function choice<const T extends string>(
  flag: string,
  text: string | undefined,
  words: readonly T[],
): T | undefined {
  if (text === undefined) return undefined;
  const word = words.find((candidate) => candidate === text);
  if (word === undefined)
    throw new DeskGridError(ErrorCode.Usage, `${flag} takes ${words.join(' or ')}, not "${text}"`);
  return word;
}

function describeConfinement(mode: string, network: 'on' | 'off'): string {
  if (mode === 'refused') return 'refused (this computer cannot confine them)';
  if (mode === 'unconfined') return 'run UNCONFINED (--unconfined-jobs accept)';
  return `confined (${mode}), network ${network}`;
}
