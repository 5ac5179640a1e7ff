// The last fallback when multicast never arrives and nobody typed an address: knock on the
// job-server port of every address in a subnet the user names, and hand back those that answer.
// Only the addresses of that subnet are ever contacted, a bounded number at a time; whoever
// answers must still prove the join code before it gets a job.

import { Socket } from 'node:net';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

/** The largest subnet probed: a /22 is 1 022 addresses. */
const SMALLEST_PREFIX = 22;
const DEFAULT_CONCURRENCY = 64;
const DEFAULT_TIMEOUT_MS = 400;

/** The host addresses of an IPv4 CIDR ("10.0.4.0/24"), without its network and broadcast addresses. */
export function subnetHosts(cidr: string): string[] {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr.trim());
  const octets = match?.slice(1, 5).map(Number) ?? [];
  const prefix = Number(match?.[5]);
  if (!match || octets.some((octet) => octet > 255) || !(prefix >= 0 && prefix <= 32)) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `invalid subnet "${cidr}": expected an IPv4 CIDR like 192.168.1.0/24`,
    );
  }
  if (prefix < SMALLEST_PREFIX) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `subnet ${cidr} is too large to probe (at most a /${SMALLEST_PREFIX}, 1022 addresses)`,
    );
  }
  const base = octets.reduce((value, octet) => value * 256 + octet, 0);
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  const first = size > 2 ? network + 1 : network;
  const last = size > 2 ? network + size - 2 : network + size - 1;
  const hosts: string[] = [];
  for (let value = first; value <= last; value += 1) {
    hosts.push([24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.'));
  }
  return hosts;
}

/** Addresses in `cidr` that accept a TCP connection on `port`. */
export async function probeSubnet(
  cidr: string,
  port: number,
  options: { concurrency?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const hosts = subnetHosts(cidr);
  const answering: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let host = hosts[next++]; host !== undefined; host = hosts[next++]) {
      if (await answers(host, port, options.timeoutMs ?? DEFAULT_TIMEOUT_MS)) answering.push(host);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, hosts.length) }, worker),
  );
  return answering.sort();
}

function answers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, host);
  });
}
