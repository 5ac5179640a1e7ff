// A private LAN of several "hosts" on one Linux machine, for tests that run several DeskGrid nodes.
//
// Every host is a network namespace whose only interfaces are `lo` and `lan0`; each `lan0` is one
// end of a veth pair whose other end sits on a bridge (`br0`) in a further namespace of its own.
// NOTHING is added to the root namespace: no bridge, no veth end, no address, no route. Test
// traffic, multicast and mDNS therefore cannot leave through the machine's real interfaces
// (see docs/network-lab.md). `assertIsolated` checks this for every host as it is created.
//
//   root namespace (untouched: eth0, lo, ...)
//
//   <prefix>b:   br0 ── <prefix>p1 ── <prefix>p2 ── ...          (bridge namespace)
//                          │             │
//   <prefix>h1:  lo, lan0 10.77.S.1/24   │                       (host namespaces)
//   <prefix>h2:  lo, lan0 10.77.S.2/24 ──┘
//
// Names: `<prefix>` is `dgl` + the owning process id in base 36 (5 characters) + 2 random
// characters, e.g. `dgl02f1k7q`; the bridge-side veth ends are `<prefix>p<K>` (at most 13
// characters, under Linux's 15-character limit for interface names). Because the owner's pid is in
// the name, `cleanupStaleNamespaces` can tell leftovers of a killed run (owner gone) from the LANs
// of test files running right now (owner alive), and never touches anything else.
//
// Subnet: host K gets 10.77.S.K/24 where S (1..254) is derived from the prefix. Two LANs can never
// interfere whatever S is (each has its own bridge and its hosts have no other interface or route);
// a per-LAN S only keeps addresses in logs and packet captures unambiguous.
//
// Teardown: `destroy()` (call it in afterAll/finally) kills every process in the LAN's namespaces
// and deletes them. Should that not happen, three fallbacks:
//  - a `process.once('exit')` hook synchronously deletes whatever this process still owns (it runs
//    on process.exit() and a normal end, NOT on a fatal signal: vitest ends its fork workers with
//    SIGTERM, so inside vitest this hook alone would never run);
//  - a per-LAN watchdog (a detached `sh` holding a pipe from this process) deletes the LAN's
//    namespaces as soon as this process is gone, however it died, SIGKILL included;
//  - `createLan` first removes leftovers whose owner process is dead (`cleanupStaleNamespaces`).
//
// Running programs: `lan.spawn(host, process.execPath, ['-e', script])` runs
// `ip netns exec <ns> ...` (which execs the command in place, so the ChildProcess pid is the
// program's own pid). Note that in a namespace `os.hostname()` is still the machine's name.
//
// Surprises worth knowing: setting a link down flushes the routes through it, including the
// 224.0.0.0/4 multicast route, so `linkUp` puts that route back; this machine has no `ping`.

import { execFile, execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { Socket } from 'node:net';

export interface LanHost {
  /** Namespace name, e.g. `dgl02f1k7qh1`. */
  readonly name: string;
  /** IPv4 address of the host's `lan0`, e.g. `10.77.42.1`. */
  readonly address: string;
}

export interface LanSpawnOptions {
  /** Environment of the program (default: this process's environment). */
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  /** Default 'pipe' for all three streams. */
  stdio?: StdioOptions;
}

export interface LanExecOptions {
  /** The program is SIGKILLed after this long (default 10 s); the result then has `timedOut`. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the program's standard input (otherwise stdin is empty). */
  input?: string;
}

export interface LanExecResult {
  /** Exit status, or null when the program was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the time limit killed the program. */
  timedOut: boolean;
}

export interface Lan {
  /** The hosts, in creation order (host K, counting from 1, has address 10.77.S.K). */
  readonly hosts: LanHost[];
  /** Per-LAN name prefix shared by all its namespaces, e.g. `dgl02f1k7q`. */
  readonly prefix: string;
  /** Name of the namespace holding the bridge. */
  readonly bridge: string;
  /** The LAN's subnet, e.g. `10.77.42.0/24`. */
  readonly subnet: string;
  /** Spawns `command args` inside a host's namespace (`ip netns exec <ns> ...`); tracked for teardown. */
  spawn(host: LanHost, command: string, args: string[], options?: LanSpawnOptions): ChildProcess;
  /** Runs `command args` to completion inside a host, with a time limit. */
  exec(host: LanHost, command: string, args: string[], options?: LanExecOptions): Promise<LanExecResult>;
  /** Cuts a host's link (`ip -n <ns> link set lan0 down`): a partition. */
  linkDown(host: LanHost): Promise<void>;
  /** Restores a host's link, and the multicast route that `linkDown` flushed. */
  linkUp(host: LanHost): Promise<void>;
  /** Adds one more host to the running LAN (a late joiner). */
  addHost(): Promise<LanHost>;
  /** SIGKILLs every process in a host's namespace (node loss) and waits until they are gone. */
  killAll(host: LanHost): Promise<void>;
  /** Fails unless the host sees only `lo` and `lan0`, and `lan0`'s peer sits on this LAN's bridge. */
  assertIsolated(host: LanHost): Promise<void>;
  /** Kills everything and deletes every namespace of this LAN; safe to call twice. */
  destroy(): Promise<void>;
}

/** Leading characters of every namespace this helper creates. */
export const NAMESPACE_TAG = 'dgl';
/** Every namespace this helper creates matches this; group 1 is the owner's pid in base 36. */
export const NAMESPACE_PATTERN = /^dgl([0-9a-z]{5})[0-9a-z]{2}(?:b|t|h[1-9][0-9]?)$/;
/** Hosts per LAN (K is at most two digits, so interface names stay within 15 characters). */
export const MAX_HOSTS = 99;

const IP_TIMEOUT_MS = 5_000;
const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
const WAIT_GONE_TIMEOUT_MS = 3_000;
const POLL_MS = 20;
const MULTICAST_ROUTE = '224.0.0.0/4';

// ---------------------------------------------------------------------------------------------
// Process-wide bookkeeping, for the exit hook.

/** Namespaces created by this process and not yet deleted. */
const ownedNamespaces = new Set<string>();
/** Programs started in our namespaces that have not exited yet. */
const ownedChildren = new Set<ChildProcess>();
const usedPrefixes = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of ownedChildren) child.kill('SIGKILL');
    for (const name of ownedNamespaces) deleteNamespaceSync(name);
    ownedNamespaces.clear();
  });
}

/**
 * The watchdog of one LAN: a detached `sh` (in the root namespace; it only runs `ip netns`) that
 * blocks reading a pipe from this process. The pipe reaches end-of-file when this process closes it
 * (end of `destroy`) or dies in any way, SIGTERM and SIGKILL included; the script then SIGKILLs the
 * processes in, and deletes, every namespace whose name starts with the prefix ($1). After a normal
 * `destroy` there are none left and it just exits.
 */
const WATCHDOG_SCRIPT = `cat >/dev/null
for ns in $(ip netns list | cut -d' ' -f1); do
  case "$ns" in
    "$1"?*) ip netns pids "$ns" | xargs -r kill -9 2>/dev/null; ip netns del "$ns" 2>/dev/null ;;
  esac
done`;

function startWatchdog(prefix: string): ChildProcess {
  const watchdog = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'deskgrid-netns-watchdog', prefix], {
    detached: true, // its own process group: not killed along with a test worker's group
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => undefined);
  watchdog.stdin?.on('error', () => undefined);
  // Neither the process nor the pipe may keep this process's event loop alive.
  watchdog.unref();
  if (watchdog.stdin instanceof Socket) watchdog.stdin.unref();
  return watchdog;
}

/** Synchronously kills every process in a namespace and deletes it; never throws. */
function deleteNamespaceSync(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { timeout: IP_TIMEOUT_MS, stdio: 'pipe' });
    for (const pid of parsePids(pids.toString())) killQuietly(pid);
  } catch {
    // Namespace already gone, or `ip` failed: try the deletion anyway.
  }
  try {
    execFileSync('ip', ['netns', 'del', name], { timeout: IP_TIMEOUT_MS, stdio: 'pipe' });
  } catch {
    // Already gone.
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers around `ip`.

class IpError extends Error {}

/** Runs `ip args` with a time limit; rejects with ip's message on failure. */
function ip(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'ip',
      args,
      { timeout: IP_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          reject(new IpError(`ip ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        } else {
          resolve(stdout);
        }
      },
    );
    child.stdin?.end(input);
  });
}

function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number)
    .filter((pid) => pid > 1 && pid !== process.pid);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Names listed by `ip netns list` (lines look like `name` or `name (id: 3)`). */
function listNamespacesSync(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { timeout: IP_TIMEOUT_MS, stdio: 'pipe' });
  return parseNamespaceList(out.toString());
}

function parseNamespaceList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Interface names and details from `ip -o link` output (`2: lan0@if3: <...> ... link-netns x`). */
function parseLinks(text: string): { name: string; line: string }[] {
  const links: { name: string; line: string }[] = [];
  for (const line of text.split('\n')) {
    const match = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (match?.[1] !== undefined) links.push({ name: match[1], line });
  }
  return links;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A prefix not used by this process nor present on the machine. */
function newPrefix(): string {
  const owner = process.pid.toString(36).padStart(5, '0');
  const existing = new Set(listNamespacesSync());
  for (let attempt = 0; attempt < 100; attempt++) {
    const prefix = `${NAMESPACE_TAG}${owner}${randomInt(36 * 36)
      .toString(36)
      .padStart(2, '0')}`;
    const clash = [...existing].some((name) => name.startsWith(prefix));
    if (!usedPrefixes.has(prefix) && !clash) {
      usedPrefixes.add(prefix);
      return prefix;
    }
  }
  throw new Error('netns: no free namespace prefix after 100 attempts');
}

/** Third octet of the LAN's subnet (1..254), derived from the prefix. */
function subnetOctet(prefix: string): number {
  let hash = 0;
  for (const char of prefix) hash = (hash * 31 + char.charCodeAt(0)) % 1_000_003;
  return (hash % 254) + 1;
}

// ---------------------------------------------------------------------------------------------
// Availability and stale cleanup.

let cachedReason: string | null | undefined;

/** null when network namespaces can be used here, else the reason to skip (cached). */
export function netnsUnavailableReason(): string | null {
  if (cachedReason === undefined) cachedReason = probe();
  return cachedReason;
}

function probe(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const uid = process.getuid?.();
  if (uid !== 0) return `creating network namespaces needs root (uid is ${uid ?? 'unknown'})`;
  try {
    execFileSync('ip', ['-V'], { timeout: IP_TIMEOUT_MS, stdio: 'pipe' });
  } catch {
    return '`ip` (iproute2) is not available';
  }
  // Create a throw-away namespace with a bridge and a veth pair in it (both ends inside).
  let name: string;
  try {
    name = `${newPrefix()}t`;
  } catch (error) {
    return `\`ip netns list\` fails: ${errorText(error)}`;
  }
  ownedNamespaces.add(name);
  installExitHook();
  try {
    for (const args of [
      ['netns', 'add', name],
      ['-n', name, 'link', 'add', 'name', 'br0', 'type', 'bridge'],
      ['-n', name, 'link', 'add', 'name', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
    ]) {
      try {
        execFileSync('ip', args, { timeout: IP_TIMEOUT_MS, stdio: 'pipe' });
      } catch (error) {
        return `\`ip ${args.join(' ')}\` fails: ${errorText(error)}`;
      }
    }
    return null;
  } finally {
    deleteNamespaceSync(name);
    ownedNamespaces.delete(name);
  }
}

function errorText(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const text = stderr instanceof Buffer ? stderr.toString().trim() : '';
  return text || (error instanceof Error ? error.message : String(error));
}

/**
 * Deletes namespaces left by earlier runs of this helper that were killed before they could clean
 * up: names that match both `pattern` and this helper's own scheme (`NAMESPACE_PATTERN`) and whose
 * owning process (pid encoded in the name) no longer exists. Processes still inside them are
 * SIGKILLed first. LANs of live processes (other test files running now) are never touched, nor is
 * any namespace outside the scheme. Returns the deleted names.
 */
export function cleanupStaleNamespaces(pattern: RegExp = NAMESPACE_PATTERN): string[] {
  const removed: string[] = [];
  for (const name of listNamespacesSync()) {
    const own = NAMESPACE_PATTERN.exec(name);
    // `search` ignores the pattern's `g`/`y` state, unlike `test`.
    if (own?.[1] === undefined || name.search(pattern) < 0) continue;
    const owner = parseInt(own[1], 36);
    if (ownedNamespaces.has(name) || isAlive(owner)) continue;
    deleteNamespaceSync(name);
    removed.push(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// The LAN.

/**
 * Creates a LAN of `count` hosts (10.77.S.1 .. 10.77.S.count) behind a bridge that lives in its own
 * namespace. Throws when namespaces are unavailable (check `netnsUnavailableReason()` first); on a
 * failure part-way, everything created so far is deleted before the error is rethrown.
 */
export async function createLan(count: number): Promise<Lan> {
  if (!Number.isInteger(count) || count < 0 || count > MAX_HOSTS) {
    throw new RangeError(`createLan: count must be an integer in 0..${MAX_HOSTS}, got ${count}`);
  }
  const reason = netnsUnavailableReason();
  if (reason !== null) throw new Error(`createLan: network namespaces are unavailable: ${reason}`);
  cleanupStaleNamespaces();

  const lan = new NetnsLan(newPrefix());
  try {
    await lan.setUp();
    for (let k = 0; k < count; k++) await lan.addHost();
  } catch (error) {
    await lan.destroy().catch(() => undefined);
    throw error;
  }
  return lan;
}

class NetnsLan implements Lan {
  readonly hosts: LanHost[] = [];
  readonly bridge: string;
  readonly subnet: string;
  private readonly octets: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly watchdog: ChildProcess;
  private nextIndex = 1;
  private destroying: Promise<void> | undefined;

  constructor(readonly prefix: string) {
    this.bridge = `${prefix}b`;
    this.octets = `10.77.${subnetOctet(prefix)}`;
    this.subnet = `${this.octets}.0/24`;
    this.watchdog = startWatchdog(prefix);
  }

  async setUp(): Promise<void> {
    await this.addNamespace(this.bridge);
    await ip(
      ['-n', this.bridge, '-batch', '-'],
      'link set lo up\n' +
        'link add name br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0\n' +
        'link set br0 up\n',
    );
  }

  async addHost(): Promise<LanHost> {
    this.assertUsable();
    const k = this.nextIndex;
    if (k > MAX_HOSTS) throw new RangeError(`addHost: at most ${MAX_HOSTS} hosts per LAN`);
    this.nextIndex++;
    const host: LanHost = { name: `${this.prefix}h${k}`, address: `${this.octets}.${k}` };
    const port = `${this.prefix}p${k}`;
    await this.addNamespace(host.name);
    // The pair is created inside the bridge namespace and its peer goes straight into the host:
    // neither end ever exists in the root namespace.
    await ip([
      '-n',
      this.bridge,
      'link',
      'add',
      'name',
      port,
      'type',
      'veth',
      'peer',
      'name',
      'lan0',
      'netns',
      host.name,
    ]);
    await ip(['-n', this.bridge, 'link', 'set', port, 'master', 'br0', 'up']);
    await ip(
      ['-n', host.name, '-batch', '-'],
      'link set lo up\n' +
        `addr add ${host.address}/24 dev lan0\n` +
        'link set lan0 multicast on up\n' +
        `route add ${MULTICAST_ROUTE} dev lan0\n`,
    );
    await this.assertIsolated(host);
    this.hosts.push(host);
    return host;
  }

  spawn(host: LanHost, command: string, args: string[], options: LanSpawnOptions = {}): ChildProcess {
    this.assertUsable();
    this.assertOurs(host);
    const child = spawn('ip', ['netns', 'exec', host.name, command, ...args], {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: options.stdio ?? 'pipe',
    });
    this.track(child);
    return child;
  }

  exec(host: LanHost, command: string, args: string[], options: LanExecOptions = {}): Promise<LanExecResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const child = this.spawn(host, command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.stdin?.on('error', () => undefined).end(options.input);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
    });
  }

  async linkDown(host: LanHost): Promise<void> {
    this.assertUsable();
    this.assertOurs(host);
    await ip(['-n', host.name, 'link', 'set', 'lan0', 'down']);
  }

  async linkUp(host: LanHost): Promise<void> {
    this.assertUsable();
    this.assertOurs(host);
    await ip(['-n', host.name, 'link', 'set', 'lan0', 'up']);
    // Setting the link down flushed every route through it; the connected /24 comes back with the
    // link, the multicast route must be put back by hand.
    await ip(['-n', host.name, 'route', 'replace', MULTICAST_ROUTE, 'dev', 'lan0']);
  }

  async killAll(host: LanHost): Promise<void> {
    this.assertUsable();
    this.assertOurs(host);
    await killNamespace(host.name);
  }

  async assertIsolated(host: LanHost): Promise<void> {
    this.assertOurs(host);
    const links = parseLinks(await ip(['-n', host.name, '-o', '-d', 'link', 'show']));
    const names = links.map((link) => link.name).sort();
    if (names.join(',') !== 'lan0,lo') {
      throw new Error(`netns: host ${host.name} is not isolated: it has interfaces ${names.join(', ')}`);
    }
    const lan0 = links.find((link) => link.name === 'lan0');
    if (lan0 === undefined || !lan0.line.includes(` link-netns ${this.bridge} `)) {
      throw new Error(
        `netns: lan0 of ${host.name} is not a veth into ${this.bridge}: ${lan0?.line ?? '(none)'}`,
      );
    }
    // And the bridge namespace holds only lo, br0 and veth ends leading to this LAN's hosts.
    for (const link of parseLinks(await ip(['-n', this.bridge, '-o', '-d', 'link', 'show']))) {
      if (link.name === 'lo' || link.name === 'br0') continue;
      const peer = / link-netns (\S+) /.exec(link.line)?.[1];
      const isOurPort = new RegExp(`^${this.prefix}p\\d+$`).test(link.name);
      const peerIsOurHost = peer !== undefined && new RegExp(`^${this.prefix}h\\d+$`).test(peer);
      if (!isOurPort || !peerIsOurHost) {
        throw new Error(`netns: bridge ${this.bridge} has an unexpected interface: ${link.line}`);
      }
    }
  }

  destroy(): Promise<void> {
    this.destroying ??= this.tearDown();
    return this.destroying;
  }

  // -------------------------------------------------------------------------------------------

  private async tearDown(): Promise<void> {
    try {
      await this.deleteAll();
    } finally {
      // Lets the watchdog go; it deletes whatever deleteAll could not.
      this.watchdog.stdin?.end();
    }
  }

  private async deleteAll(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    const failures: string[] = [];
    // Only those that exist: a failed `netns add` leaves a name in the list.
    const existing = new Set(listNamespacesSync());
    // Hosts first (deleting a host also deletes its veth pair), the bridge last.
    for (const name of [...this.namespaces].reverse()) {
      if (!existing.has(name)) {
        ownedNamespaces.delete(name);
        continue;
      }
      try {
        await killNamespace(name);
      } catch (error) {
        failures.push(errorText(error));
      }
      try {
        await ip(['netns', 'del', name]);
        ownedNamespaces.delete(name);
      } catch (error) {
        failures.push(errorText(error));
      }
    }
    const left = listNamespacesSync().filter((name) => name.startsWith(this.prefix));
    if (left.length === 0) {
      for (const name of this.namespaces) ownedNamespaces.delete(name);
    } else {
      failures.push(`namespaces left behind: ${left.join(', ')}`);
    }
    if (failures.length > 0)
      throw new Error(`netns: teardown of ${this.prefix} failed:\n${failures.join('\n')}`);
  }

  private async addNamespace(name: string): Promise<void> {
    // Registered before creation, so the exit hook also covers a crash right after `netns add`.
    ownedNamespaces.add(name);
    installExitHook();
    this.namespaces.push(name);
    await ip(['netns', 'add', name]);
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    ownedChildren.add(child);
    // Without a listener an 'error' event (e.g. a failed kill) would crash the test process.
    child.on('error', () => undefined);
    child.once('exit', () => {
      this.children.delete(child);
      ownedChildren.delete(child);
    });
  }

  private assertUsable(): void {
    if (this.destroying !== undefined) throw new Error(`netns: LAN ${this.prefix} has been destroyed`);
  }

  private assertOurs(host: LanHost): void {
    if (!this.namespaces.includes(host.name) || host.name === this.bridge) {
      throw new Error(`netns: ${host.name} is not a host of LAN ${this.prefix}`);
    }
  }
}

/** SIGKILLs every process in a namespace and waits (bounded) until none is left. */
async function killNamespace(name: string): Promise<void> {
  const deadline = Date.now() + WAIT_GONE_TIMEOUT_MS;
  for (;;) {
    const pids = parsePids(await ip(['netns', 'pids', name]));
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`netns: processes ${pids.join(', ')} in ${name} survived SIGKILL`);
    }
    for (const pid of pids) killQuietly(pid);
    await sleep(POLL_MS);
  }
}

/**
 * Resolves with the first line of `child`'s stdout that matches `pattern`; rejects when the child
 * exits first or after `timeoutMs` (the error carries what was printed so far).
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdout = child.stdout;
    if (stdout === null) {
      reject(new Error('waitForLine: the child has no stdout pipe'));
      return;
    }
    let seen = '';
    let pending = '';
    const finish = (error: Error | null, line?: string): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      child.off('close', onClose);
      if (error) reject(error);
      else resolve(line ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      const text = chunk.toString();
      seen += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      const match = lines.find((line) => pattern.test(line));
      if (match !== undefined) finish(null, match);
    };
    // 'close' (not 'exit'): it comes after the last stdout data.
    const onClose = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(
        new Error(`waitForLine: exited (${signal ?? code}) before printing ${pattern}; stdout: ${seen}`),
      );
    };
    const timer = setTimeout(() => {
      finish(new Error(`waitForLine: no line matching ${pattern} within ${timeoutMs} ms; stdout: ${seen}`));
    }, timeoutMs);
    stdout.on('data', onData);
    child.once('close', onClose);
  });
}
