// The one parser of node addresses (CLI, UI, settings file, app): names, IPv4, [IPv6], an
// optional port that defaults to the node port, an optional NODE-ID@; and its written form.

import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_PORT, formatPeerAddress, parsePeerAddress } from '../../shared/peer-address.js';

const ID = 'ab'.repeat(32);

describe('parsePeerAddress', () => {
  it.each([
    ['office-pc', { host: 'office-pc', port: DEFAULT_NODE_PORT }],
    ['office-pc.lan:9000', { host: 'office-pc.lan', port: 9000 }],
    [' 10.0.0.5 ', { host: '10.0.0.5', port: DEFAULT_NODE_PORT }],
    ['10.0.0.5:1', { host: '10.0.0.5', port: 1 }],
    ['[fe80::1]', { host: 'fe80::1', port: DEFAULT_NODE_PORT }],
    ['[fe80::1%eth0]:65535', { host: 'fe80::1%eth0', port: 65535 }],
    ['[::ffff:10.0.0.5]:7000', { host: '::ffff:10.0.0.5', port: 7000 }],
    [`${ID}@10.0.0.5`, { host: '10.0.0.5', port: DEFAULT_NODE_PORT, id: ID }],
    [`${ID.toUpperCase()}@[::1]:8000`, { host: '::1', port: 8000, id: ID }],
  ])('reads %s', (text, peer) => {
    expect(parsePeerAddress(text)).toEqual({ ok: true, peer });
  });

  it('uses the default port it is given', () => {
    expect(parsePeerAddress('node', 9)).toEqual({ ok: true, peer: { host: 'node', port: 9 } });
  });

  it.each([
    ['', /the host is missing/],
    [':80', /the host is missing/],
    ['host:port', /the port must be a number from 1 to 65535/],
    ['10.1.2.3:99999', /the port must be a number from 1 to 65535/],
    ['10.1.2.3:0', /the port must be a number from 1 to 65535/],
    ['10.1.2.3:', /the port must be a number/],
    ['a:b:c', /write an IPv6 address in brackets/],
    ['fe80::1', /write an IPv6 address in brackets/],
    ['[fe80::1', /closing \]/],
    ['[fe80::1]x', /unexpected "x" after \]/],
    ['[nothex]', /"nothex" is not an IPv6 address/],
    ['not a peer', /"not a peer" is not a host name or IPv4 address/],
    ['abc@10.0.0.5', /node id of 64 hex digits/],
    ['http://10.0.0.5', /the port must be a number/],
  ])('refuses %j, saying why', (text, why) => {
    const parsed = parsePeerAddress(text);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.reason).toMatch(why);
    expect(parsed.reason.startsWith(`invalid peer "${text}": `)).toBe(true);
  });
});

describe('formatPeerAddress', () => {
  it('writes the one form every reader parses back', () => {
    for (const text of ['office-pc', '10.0.0.5:9000', '[fe80::1]', `${ID}@[::1]:8000`]) {
      const parsed = parsePeerAddress(text);
      if (!parsed.ok) throw new Error(parsed.reason);
      const written = formatPeerAddress(parsed.peer);
      expect(parsePeerAddress(written)).toEqual(parsed);
    }
    expect(formatPeerAddress({ host: 'fe80::1', port: 7717 })).toBe('[fe80::1]:7717');
    expect(formatPeerAddress({ host: 'pc', port: 1, id: ID })).toBe(`${ID}@pc:1`);
  });
});
