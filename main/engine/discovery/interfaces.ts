// Which network interfaces LAN discovery may use: IPv4 interfaces that are up, not loopback, not
// link-local (169.254.x: no DHCP answer, so no real LAN) and, where the system tells, able to
// multicast. `describeInterfaces` also says why every other interface is left out, for the doctor.

import { readFileSync, readdirSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export interface LanInterface {
  name: string;
  address: string;
  netmask: string;
}

export interface InterfaceVerdict {
  name: string;
  /** The IPv4 address judged; null when the interface has none. */
  address: string | null;
  usable: boolean;
  /** Why it is not used (null when usable), in words for people. */
  reason: string | null;
}

type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Linux's interface flags (include/uapi/linux/if.h); null when the system does not tell. */
export type FlagReader = (name: string) => number | null;

const IFF_MULTICAST = 0x1000;
// Linux interfaces can be long-lived and numerous (containers); a doctor report stays readable.
const MAX_SYS_INTERFACES = 256;

/** Interfaces mDNS can run on, one entry per usable IPv4 address. */
export function lanInterfaces(
  table: InterfaceTable = networkInterfaces(),
  flagsOf: FlagReader = linuxFlags,
): LanInterface[] {
  const usable: LanInterface[] = [];
  for (const [name, addresses] of Object.entries(table)) {
    for (const info of addresses ?? []) {
      if (verdictFor(name, info, flagsOf) === null) {
        usable.push({ name, address: info.address, netmask: info.netmask });
      }
    }
  }
  return usable;
}

/** The usable interface holding `address`, or null when no usable interface has it. */
export function lanInterfaceFor(
  address: string,
  table: InterfaceTable = networkInterfaces(),
  flagsOf: FlagReader = linuxFlags,
): LanInterface | null {
  return lanInterfaces(table, flagsOf).find((candidate) => candidate.address === address) ?? null;
}

/** Every interface, usable or not, with the reason for each one left out. */
export function describeInterfaces(
  table: InterfaceTable = networkInterfaces(),
  flagsOf: FlagReader = linuxFlags,
  listed: readonly string[] = linuxInterfaceNames(),
): InterfaceVerdict[] {
  const verdicts: InterfaceVerdict[] = [];
  for (const [name, addresses] of Object.entries(table)) {
    const ipv4 = (addresses ?? []).filter((info) => info.family === 'IPv4');
    if (ipv4.length === 0) {
      verdicts.push({ name, address: null, usable: false, reason: 'no IPv4 address' });
      continue;
    }
    for (const info of ipv4) {
      const reason = verdictFor(name, info, flagsOf);
      verdicts.push({ name, address: info.address, usable: reason === null, reason });
    }
  }
  // Node lists only interfaces that are up and running and have an address; on Linux the others
  // are still worth naming ("your Ethernet is unplugged").
  for (const name of listed) {
    if (table[name] === undefined) {
      verdicts.push({ name, address: null, usable: false, reason: 'down, unplugged or without an address' });
    }
  }
  return verdicts;
}

/** Whether `address` lies in the subnet of `base`/`netmask` (all dotted IPv4). */
export function inSubnet(address: string, base: string, netmask: string): boolean {
  const a = ipv4ToNumber(address);
  const b = ipv4ToNumber(base);
  const m = ipv4ToNumber(netmask);
  if (a === null || b === null || m === null) return false;
  return (a & m) >>> 0 === (b & m) >>> 0;
}

/** A dotted IPv4 address as an unsigned 32-bit number; null when it is not one. */
export function ipv4ToNumber(address: string): number | null {
  const parts = address.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

function verdictFor(name: string, info: NetworkInterfaceInfo, flagsOf: FlagReader): string | null {
  if (info.family !== 'IPv4') return 'not IPv4';
  if (info.internal || info.address.startsWith('127.')) return 'loopback';
  if (info.address.startsWith('169.254.')) {
    return 'link-local address 169.254.x.x (no DHCP server answered): not on a real LAN';
  }
  const flags = flagsOf(name);
  if (flags !== null && (flags & IFF_MULTICAST) === 0)
    return 'multicast is off (a VPN or point-to-point link?)';
  return null;
}

function linuxFlags(name: string): number | null {
  if (process.platform !== 'linux' || !/^[\w.@:-]+$/.test(name)) return null;
  try {
    const flags = Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
    return Number.isNaN(flags) ? null : flags;
  } catch {
    return null;
  }
}

function linuxInterfaceNames(): string[] {
  if (process.platform !== 'linux') return [];
  try {
    return readdirSync('/sys/class/net').slice(0, MAX_SYS_INTERFACES);
  } catch {
    return [];
  }
}
