// LAN discovery over mDNS / DNS-SD (`_deskgrid._tcp.local`), on ONE interface named by its IPv4
// address. bonjour-service publishes this node (announcements, answers, goodbye); the
// browsing side reads bonjour's multicast-dns socket directly, because bonjour's Browser reports a
// service only once: not its re-announcements, not a restart under the same name, and never the
// loss of a SIGKILLed node (its PTR record lives 8 hours). So this module asks again every
// `queryIntervalMs` and reports every answer it hears as a fresh sighting; liveness is the
// caller's rule (see membership.ts). What this measured and works around: docs/network-lab.md.

import type { RemoteInfo } from 'node:dgram';
import { isIPv4 } from 'node:net';
import Bonjour from 'bonjour-service';
import { plainText } from '../../../shared/display-text.js';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { createLogger } from '../log.js';
import { inSubnet, lanInterfaceFor } from './interfaces.js';

const log = createLogger('mdns');

export const SERVICE_TYPE = 'deskgrid'; // _deskgrid._tcp

export interface Advertisement {
  /** The node id: 64 lowercase hex (SHA-256 of its certificate). */
  id: string;
  /** The public cluster id (16 hex, `clusterId(code)`): never the join code itself. */
  cluster: string;
  /** Wire protocol version (WIRE_PROTOCOL_VERSION). */
  protocol: number;
  cores: number;
  /** `process.platform` of the node. */
  os: string;
  name: string;
  /** DeskGrid's version. */
  version: string;
  /** The node's TLS job port. */
  port: number;
}

export interface Sighting {
  ad: Advertisement;
  /** The answer packet's source address: the one that reached us, IPv4. */
  address: string;
  /** Date.now() when the packet arrived. */
  seenAt: number;
}

export interface MdnsOptions {
  /** IPv4 address of the LAN interface to use; mDNS runs on that interface only. */
  interfaceAddress: string;
  self: Advertisement;
  /** Announce `self` (default), or only listen (`deskgrid nodes`, a submitter); `self.id` is still filtered out. */
  publish?: boolean;
  /** How often to ask the LAN who is there (default 1000 ms). */
  queryIntervalMs?: number;
  onSighting(s: Sighting): void;
  /** A goodbye for `id`, sent from `address` (only the node's own address should be believed). */
  onGoodbye(id: string, address: string): void;
  onError(error: Error): void;
}

const SERVICE_NAME = `_${SERVICE_TYPE}._tcp.local`;
const SERVICE_SUFFIX = `.${SERVICE_NAME}`;
const DEFAULT_QUERY_INTERVAL_MS = 1000;
const MIN_QUERY_INTERVAL_MS = 100;
const MAX_QUERY_INTERVAL_MS = 60_000;
// unpublishAll's callback waits for the goodbye's send; a socket that never bound must not hold stop().
const STOP_TIMEOUT_MS = 1000;
const ERROR_REPEAT_MS = 60_000;
// A DNS character-string (one TXT entry) is at most 255 bytes; dns-packet silently corrupts longer ones.
const MAX_TXT_ENTRY_BYTES = 255;
const MAX_NAME_BYTES = 200;
// Packets come from anyone on the LAN: bound the work one packet can cause.
const MAX_RECORDS_PER_PACKET = 256;
const MAX_INSTANCES_PER_PACKET = 64;
// Instance name -> node id, to name the node in a goodbye that lacks its TXT record.
const MAX_REMEMBERED_INSTANCES = 1024;

const ID_PATTERN = /^[0-9a-f]{64}$/;
const CLUSTER_PATTERN = /^[0-9a-f]{16}$/;
const OS_PATTERN = /^[a-z0-9_.-]{1,32}$/i;
const VERSION_PATTERN = /^[\x21-\x7e]{1,64}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f]/;

/** The DNS-SD instance label of a node: unique per node, unlike the host name. */
export function instanceName(id: string): string {
  return `${SERVICE_TYPE}-${id.slice(0, 12)}`;
}

function fullInstanceName(id: string): string {
  return `${instanceName(id)}${SERVICE_SUFFIX}`;
}

/** The mDNS host name a node's SRV record points to (os.hostname() repeats on cloned machines). */
export function hostName(id: string): string {
  return `dg-${id.slice(0, 12)}.local`;
}

// The parts of multicast-dns (reached through bonjour-service, which does not expose it) used here.
interface DnsRecord {
  name: string;
  type: string;
  ttl?: number;
  data?: unknown;
}
interface DnsPacket {
  questions?: Array<{ name: string; type: string }>;
  answers?: DnsRecord[];
  additionals?: DnsRecord[];
}
type PacketListener = (packet: DnsPacket, rinfo: RemoteInfo) => void;
type ErrorListener = (error: Error) => void;
interface MulticastDns {
  on(event: 'response' | 'query', listener: PacketListener): unknown;
  on(event: 'error' | 'warning', listener: ErrorListener): unknown;
  removeListener(event: 'response' | 'query', listener: PacketListener): unknown;
  query(questions: Array<{ name: string; type: string }>, callback: (error?: Error | null) => void): void;
}

export class MdnsService {
  private intervalMs: number;
  private readonly instances = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private lastForeignQueryAt = Number.NEGATIVE_INFINITY;
  private lastError: { key: string; at: number } | null = null;
  private readonly twins = new Set<string>();
  private stopping: Promise<void> | null = null;
  private destroyed = false;
  private readonly onResponse: PacketListener = (packet, rinfo) => this.handleResponse(packet, rinfo);
  private readonly onQuery: PacketListener = (packet, rinfo) => this.handleQuery(packet, rinfo);

  private constructor(
    private readonly options: MdnsOptions,
    private readonly netmask: string,
    private readonly bonjour: Bonjour,
    private readonly mdns: MulticastDns,
  ) {
    this.intervalMs = options.queryIntervalMs ?? DEFAULT_QUERY_INTERVAL_MS;
  }

  /**
   * Publishes `self` and starts asking for other nodes, on the interface that holds
   * `interfaceAddress` only. Throws (sends nothing) when that address is not one of this
   * computer's usable LAN interfaces or `self` would not be accepted by peers.
   */
  static start(options: MdnsOptions): MdnsService {
    const iface = checkOptions(options);
    let service: MdnsService | null = null;
    const report = (error: Error): void => service?.reportError(error);
    // `interface` alone picks the multicast interface but binds to it, which receives nothing on
    // Linux; binding the wildcard receives, and the membership stays on `interface` only.
    const bonjourOptions = { interface: iface.address, bind: '0.0.0.0', disableIPv6: true };
    // Without this callback bonjour throws the first failed answer (ENETUNREACH on a link flap).
    const bonjour = new Bonjour(bonjourOptions, (error: unknown) => report(toError(error)));
    const mdns = reachMulticastDns(bonjour);
    // multicast-dns emits 'error' (bind failed) and 'warning' (send or membership failed): an
    // 'error' without a listener would crash the process.
    mdns.on('error', report);
    mdns.on('warning', report);
    const published =
      options.publish === false
        ? null
        : bonjour.publish({
            name: instanceName(options.self.id),
            type: SERVICE_TYPE,
            protocol: 'tcp',
            port: options.self.port,
            host: hostName(options.self.id),
            txt: encodeTxt(options.self),
            disableIPv6: true,
            // bonjour's probe, on a clash, withdraws our records with a goodbye that makes the LAN drop
            // the other holder of the name too, and prints to stdout. Names come from unique node ids,
            // so a clash can only be this node running twice: reportTwin() says so instead.
            probe: false,
          });
    service = new MdnsService(options, iface.netmask, bonjour, mdns);
    mdns.on('response', service.onResponse);
    mdns.on('query', service.onQuery);
    // The first query is never held back: a starting node wants every answer now.
    service.sendQuery();
    service.schedule();
    log.info('mdns started', {
      interface: iface.name,
      address: iface.address,
      instance: published?.name ?? null,
    });
    return service;
  }

  /** Asks every `ms` from the next query on (query-pace.ts), within the bounds `start` checks. */
  setQueryInterval(ms: number): void {
    this.intervalMs = Math.min(MAX_QUERY_INTERVAL_MS, Math.max(MIN_QUERY_INTERVAL_MS, ms));
  }

  /** Withdraws this node (peers get a goodbye at once), then closes the socket. */
  stop(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      this.quiet();
      let timeout: NodeJS.Timeout | undefined = undefined;
      const finish = (): void => {
        clearTimeout(timeout);
        this.destroy();
        resolve();
      };
      timeout = setTimeout(finish, STOP_TIMEOUT_MS);
      this.bonjour.unpublishAll(finish);
    });
    return this.stopping;
  }

  /** Closes the socket at once, without a goodbye: peers notice only when answers stop. */
  destroy(): void {
    if (this.destroyed) return;
    this.quiet();
    this.destroyed = true;
    this.bonjour.destroy();
    log.info('mdns stopped', { address: this.options.interfaceAddress });
  }

  /** No more queries and no more reports; the socket stays open for the goodbye. */
  private quiet(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.mdns.removeListener('response', this.onResponse);
    this.mdns.removeListener('query', this.onQuery);
  }

  private schedule(): void {
    // ±10 % jitter, so that nodes started together drift apart and one query serves them all.
    const delay = this.intervalMs * (0.9 + Math.random() * 0.2);
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    if (this.destroyed || this.stopping !== null) return;
    // Duplicate question suppression (RFC 6762 7.3): everyone answers a query with a multicast,
    // so one query per interval on the LAN is enough. N nodes asking each would cost N² answers.
    if (Date.now() - this.lastForeignQueryAt >= this.intervalMs) this.sendQuery();
    this.schedule();
  }

  private sendQuery(): void {
    this.mdns.query([{ name: SERVICE_NAME, type: 'PTR' }], (error) => {
      if (error) this.reportError(error);
      else this.lastError = null;
    });
  }

  /**
   * Errors come in bursts (every send while a link is down): the same one is reported again only
   * after a send worked or a while later. Other nodes' queries may keep ours from being sent, so
   * a working send alone could take long to come.
   */
  private reportError(error: Error): void {
    if (this.destroyed) return;
    const key = (error as NodeJS.ErrnoException).code ?? error.message;
    const now = Date.now();
    if (key === this.lastError?.key && now - this.lastError.at < ERROR_REPEAT_MS) {
      log.debug('mdns error repeated', { error: error.message });
      return;
    }
    this.lastError = { key, at: now };
    log.warn('mdns error', { error: error.message });
    this.call(() => this.options.onError(error));
  }

  private handleQuery(packet: DnsPacket, rinfo: RemoteInfo): void {
    if (rinfo.address === this.options.interfaceAddress || !this.onOurLan(rinfo)) return;
    const asksForUs = (packet.questions ?? [])
      .slice(0, MAX_RECORDS_PER_PACKET)
      .some((q) => sameName(q.name, SERVICE_NAME) && (q.type === 'PTR' || q.type === 'ANY'));
    if (asksForUs) this.lastForeignQueryAt = Date.now();
  }

  private handleResponse(packet: DnsPacket, rinfo: RemoteInfo): void {
    const seenAt = Date.now();
    if (!this.onOurLan(rinfo)) return;
    const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])].slice(
      0,
      MAX_RECORDS_PER_PACKET,
    );
    const byInstance = new Map<string, { srv?: DnsRecord; txt?: DnsRecord; gone: boolean }>();
    const entry = (name: string): { srv?: DnsRecord; txt?: DnsRecord; gone: boolean } | null => {
      const key = name.toLowerCase();
      let found = byInstance.get(key);
      if (found === undefined) {
        if (byInstance.size >= MAX_INSTANCES_PER_PACKET || !key.endsWith(SERVICE_SUFFIX)) return null;
        found = { gone: false };
        byInstance.set(key, found);
      }
      return found;
    };
    for (const record of records) {
      if (typeof record.name !== 'string') continue;
      if (record.type === 'PTR' && sameName(record.name, SERVICE_NAME) && typeof record.data === 'string') {
        const instance = entry(record.data);
        // A goodbye is the record again with TTL 0 (RFC 6762 10.1).
        if (instance !== null && record.ttl === 0) instance.gone = true;
      } else if (record.type === 'SRV' || record.type === 'TXT') {
        const instance = entry(record.name);
        if (instance === null) continue;
        if (record.type === 'SRV') instance.srv = record;
        else instance.txt = record;
        if (record.ttl === 0) instance.gone = true;
      }
    }
    for (const [name, instance] of byInstance) {
      if (instance.gone) this.goodbye(name, instance.txt, rinfo.address);
      else if (instance.srv !== undefined && instance.txt !== undefined) {
        this.sighting(name, instance.srv, instance.txt, rinfo.address, seenAt);
      }
    }
  }

  private sighting(name: string, srv: DnsRecord, txt: DnsRecord, address: string, seenAt: number): void {
    const parsed = parseAdvertisement(txt.data, srv.data);
    if (typeof parsed === 'string') {
      log.debug('mdns answer ignored', { instance: name, address, reason: parsed });
      return;
    }
    if (parsed.id === this.options.self.id) {
      // Our own answers come back through multicast loopback; from elsewhere it is a twin.
      if (address !== this.options.interfaceAddress) this.reportTwin(address);
      return;
    }
    if (name !== fullInstanceName(parsed.id)) {
      log.debug('mdns answer ignored', { instance: name, address, reason: 'instance name and id differ' });
      return;
    }
    this.remember(name, parsed.id);
    this.call(() => this.options.onSighting({ ad: parsed, address, seenAt }));
  }

  /** Once per address: it repeats with every answer. */
  private reportTwin(address: string): void {
    if (this.twins.has(address) || this.twins.size >= MAX_INSTANCES_PER_PACKET) return;
    this.twins.add(address);
    this.reportError(
      new Error(
        `${address} announces this very node (id ${this.options.self.id.slice(0, 12)}...): is the same ` +
          'identity running on two computers or twice? Peers cannot tell the two apart',
      ),
    );
  }

  private goodbye(name: string, txt: DnsRecord | undefined, address: string): void {
    const fromTxt = txt === undefined ? undefined : txtFields(txt.data)?.get('id');
    // The id must match the instance name, or a goodbye could be forged for any node under any name.
    const matches = fromTxt !== undefined && ID_PATTERN.test(fromTxt) && name === fullInstanceName(fromTxt);
    const id = matches ? fromTxt : this.instances.get(name);
    this.instances.delete(name);
    if (id === undefined || id === this.options.self.id) return;
    this.call(() => this.options.onGoodbye(id, address));
  }

  private remember(name: string, id: string): void {
    this.instances.delete(name);
    this.instances.set(name, id);
    if (this.instances.size > MAX_REMEMBERED_INSTANCES) {
      const oldest = this.instances.keys().next();
      if (oldest.done !== true) this.instances.delete(oldest.value);
    }
  }

  /**
   * The socket is bound to the wildcard address and Linux delivers a group's packets from every
   * interface where anyone joined it (IP_MULTICAST_ALL): keep only our interface's subnet.
   */
  private onOurLan(rinfo: RemoteInfo): boolean {
    return rinfo.family === 'IPv4' && inSubnet(rinfo.address, this.options.interfaceAddress, this.netmask);
  }

  /** A throwing callback is a bug of the caller, but must not stop discovery for everyone. */
  private call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      log.error('mdns callback threw', { error: toError(error).message });
    }
  }
}

function checkOptions(options: MdnsOptions): { name: string; address: string; netmask: string } {
  const address = options.interfaceAddress;
  if (!isIPv4(address) || address === '0.0.0.0') {
    throw new DeskGridError(
      ErrorCode.Usage,
      `mDNS needs the IPv4 address of one LAN interface, got "${address}"`,
    );
  }
  // Refusing here is what keeps mDNS off every interface the caller did not name (multicast-dns
  // would otherwise join and send on all of them).
  const iface = lanInterfaceFor(address);
  if (iface === null) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `${address} is not the address of a LAN interface of this computer that is up ` +
        '(loopback, link-local and non-multicast interfaces are not used): mDNS not started',
    );
  }
  const interval = options.queryIntervalMs ?? DEFAULT_QUERY_INTERVAL_MS;
  if (!Number.isFinite(interval) || interval < MIN_QUERY_INTERVAL_MS || interval > MAX_QUERY_INTERVAL_MS) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `queryIntervalMs must be ${MIN_QUERY_INTERVAL_MS}..${MAX_QUERY_INTERVAL_MS}, got ${interval}`,
    );
  }
  if (options.publish === false) return iface;
  // What we announce must pass the checks peers make (parseAdvertisement), or nobody sees us.
  const entries = Object.entries(encodeTxt(options.self)).map(([key, value]) =>
    Buffer.from(`${key}=${value}`),
  );
  const roundTrip = parseAdvertisement(entries, { port: options.self.port });
  if (typeof roundTrip === 'string') {
    throw new DeskGridError(ErrorCode.Usage, `this node's advertisement is not valid: ${roundTrip}`);
  }
  return iface;
}

function reachMulticastDns(bonjour: Bonjour): MulticastDns {
  const server: unknown = (bonjour as unknown as { server?: unknown }).server;
  const mdns: unknown = (server as { mdns?: unknown } | undefined)?.mdns;
  const candidate = mdns as Partial<Record<'on' | 'removeListener' | 'query', unknown>> | undefined;
  if (
    typeof candidate?.on !== 'function' ||
    typeof candidate.removeListener !== 'function' ||
    typeof candidate.query !== 'function'
  ) {
    bonjour.destroy();
    throw new Error('bonjour-service has changed: its multicast-dns socket is not where it was');
  }
  return mdns as MulticastDns;
}

/** TXT entries as bonjour-service encodes them (`key=value`); the name is cut to fit a DNS string. */
function encodeTxt(ad: Advertisement): Record<string, string> {
  return {
    id: ad.id,
    cluster: ad.cluster,
    proto: String(ad.protocol),
    cores: String(ad.cores),
    os: ad.os,
    v: ad.version,
    name: truncateUtf8(ad.name, MAX_NAME_BYTES),
  };
}

/** The advertisement in a TXT record's data and an SRV record's data, or why it is refused. */
function parseAdvertisement(txtData: unknown, srvData: unknown): Advertisement | string {
  const fields = txtFields(txtData);
  if (fields === null) return 'TXT record is not a list of strings';
  const port = (srvData as { port?: unknown } | null | undefined)?.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return 'SRV port is not 1..65535';
  }
  const id = fields.get('id');
  const cluster = fields.get('cluster');
  const protocol = integerField(fields.get('proto'));
  const cores = integerField(fields.get('cores'));
  const os = fields.get('os');
  const version = fields.get('v');
  const name = fields.get('name');
  if (id === undefined || !ID_PATTERN.test(id)) return 'id is missing or not 64 hex';
  if (cluster === undefined || !CLUSTER_PATTERN.test(cluster)) return 'cluster is missing or not 16 hex';
  if (protocol === null || protocol < 1) return 'proto is missing or not a positive integer';
  if (cores === null) return 'cores is missing or not an integer';
  if (os === undefined || !OS_PATTERN.test(os)) return 'os is missing or malformed';
  if (version === undefined || !VERSION_PATTERN.test(version)) return 'v is missing or malformed';
  if (name === undefined || CONTROL_CHARACTERS.test(name)) return 'name is missing or has control characters';
  // C1 controls and direction overrides are dropped rather than refused: the name is shown to people.
  return { id, cluster, protocol, cores, os, name: plainText(name), version, port };
}

/** TXT data (a list of byte strings) as key -> value; the first of repeated keys wins (RFC 6763 6.4). */
function txtFields(data: unknown): Map<string, string> | null {
  if (!Array.isArray(data)) return null;
  const fields = new Map<string, string>();
  for (const entry of data.slice(0, MAX_RECORDS_PER_PACKET)) {
    if (!Buffer.isBuffer(entry) || entry.length > MAX_TXT_ENTRY_BYTES) return null;
    const text = entry.toString('utf8');
    const equals = text.indexOf('=');
    if (equals <= 0) continue;
    const key = text.slice(0, equals).toLowerCase();
    if (!fields.has(key)) fields.set(key, text.slice(equals + 1));
  }
  return fields;
}

function integerField(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,5}$/.test(value)) return null;
  const number = Number(value);
  return number <= 65535 ? number : null;
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let result = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    result += char;
    bytes += size;
  }
  return result;
}

function sameName(a: string, b: string): boolean {
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
