// How people name a node by address: `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`, each
// optionally behind `NODE-ID@` to pin the node's id (the SHA-256 of its certificate, as
// `deskgrid node` prints it). One parser for every place an address is typed or saved (the
// CLI's --peer and `deskgrid peers`, the UI's settings, the settings file, the desktop app), so
// that what one of them accepts the others can use. It lives here because it needs no Node API
// and the renderer checks addresses with it too.

/** The TCP port a node listens on unless told otherwise. */
export const DEFAULT_NODE_PORT = 7717;

export interface PeerAddress {
  host: string;
  port: number;
  /** The node's pinned id: a different certificate at that address is refused. */
  id?: string;
}

export type ParsedPeerAddress = { ok: true; peer: PeerAddress } | { ok: false; reason: string };

const ID = /^[0-9a-f]{64}$/;
/** A host name or IPv4 address: letters, digits, dots, dashes, underscores. */
const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;
/** The inside of [...]: hex groups and colons, perhaps a dotted IPv4 tail and a %zone. */
const IPV6 = /^[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]{1,32})?$/;

/** Parses a node address; a missing port is `defaultPort`. */
export function parsePeerAddress(text: string, defaultPort = DEFAULT_NODE_PORT): ParsedPeerAddress {
  const trimmed = text.trim();
  const wrong = (why: string): ParsedPeerAddress => ({
    ok: false,
    reason: `invalid peer "${text}": ${why} (use HOST, HOST:PORT or NODE-ID@HOST:PORT)`,
  });
  let rest = trimmed;
  let id: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    id = rest.slice(0, at).toLowerCase();
    rest = rest.slice(at + 1);
    if (!ID.test(id)) return wrong('the part before @ must be a node id of 64 hex digits');
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return wrong('an IPv6 address needs its closing ]');
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return wrong(`unexpected "${after}" after ]`);
    portText = after === '' ? undefined : after.slice(1);
    if (!IPV6.test(host) || !host.includes(':')) return wrong(`"${host}" is not an IPv6 address`);
  } else {
    const colon = rest.indexOf(':');
    if (colon >= 0 && rest.indexOf(':', colon + 1) >= 0) {
      return wrong('write an IPv6 address in brackets, like [fe80::1]:7717');
    }
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (host === '') return wrong('the host is missing');
    if (!NAME.test(host)) return wrong(`"${host}" is not a host name or IPv4 address`);
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port > 0 && port < 65536)) return wrong(`the port must be a number from 1 to 65535`);
  }
  return { ok: true, peer: id === undefined ? { host, port } : { host, port, id } };
}

/** The one written form of an address: `[ID@]HOST:PORT`, IPv6 hosts in brackets. */
export function formatPeerAddress(peer: PeerAddress): string {
  const host = peer.host.includes(':') ? `[${peer.host}]` : peer.host;
  return `${peer.id === undefined ? '' : `${peer.id}@`}${host}:${peer.port}`;
}
