// Which peer hints a submitter tries (main/engine/remote/peer-hints.ts): only IPv4 addresses on
// the network of the node that gave them (the subnet of this computer's interface holding the
// node's address, else its /24), at most 32 a message, and not again soon after one failed. No
// connection is made here: the rule is pure, on this computer's real interface table.

import { describe, expect, it } from 'vitest';
import { HINT_RETRY_MS, MAX_HINTS_PER_MESSAGE, PeerHints } from '../../../main/engine/remote/peer-hints.js';
import { plainText } from '../../../shared/display-text.js';
import type { SharedPeer } from '../../../shared/wire-protocol.js';

function hint(host: string, port = 7717, n = 1): SharedPeer {
  return { id: n.toString(16).padStart(64, '0'), name: `peer-${n}`, host, port };
}

describe('PeerHints', () => {
  it('takes hints on the giving node’s own network only, as IPv4 addresses', () => {
    const hints = new PeerHints();
    // 127.0.0.1 is on the loopback interface, 127.0.0.0/8.
    expect(
      hints.accept(
        [hint('127.9.9.9'), hint('10.1.2.3'), hint('localhost'), hint('::1'), hint('192.168.1.1')],
        '127.0.0.1',
      ),
    ).toEqual([hint('127.9.9.9')]);
    // A node on no network of this computer: its /24.
    expect(hints.accept([hint('192.0.2.77'), hint('192.0.3.1'), hint('198.51.100.1')], '192.0.2.10')).toEqual(
      [hint('192.0.2.77')],
    );
    // No usable address for the node itself: nothing.
    expect(hints.accept([hint('192.0.2.77')], undefined)).toEqual([]);
    expect(hints.accept([hint('192.0.2.77')], 'node.example')).toEqual([]);
  });

  it(`takes at most ${MAX_HINTS_PER_MESSAGE} hints from one message`, () => {
    const many = Array.from({ length: 256 }, (_, n) => hint(`192.0.2.${n % 250}`, 7717, n));
    expect(new PeerHints().accept(many, '192.0.2.1')).toHaveLength(MAX_HINTS_PER_MESSAGE);
  });

  it('leaves a hint that failed alone for a while', () => {
    const clock = { now: 1_000_000 };
    const hints = new PeerHints(() => clock.now);
    const failing = hint('192.0.2.5');
    hints.failed(failing);
    expect(hints.accept([failing, hint('192.0.2.6', 7717, 2)], '192.0.2.1')).toEqual([
      hint('192.0.2.6', 7717, 2),
    ]);
    clock.now += HINT_RETRY_MS;
    expect(hints.accept([failing], '192.0.2.1')).toEqual([failing]);
  });
});

describe('plainText', () => {
  it('removes control and direction-changing characters and cuts long names', () => {
    expect(plainText('desk\u001b]0;owned\u0007\u001b[2J-7')).toBe('desk]0;owned[2J-7');
    expect(plainText('a\u009b31mb\u202ec\u2066d\u0000e')).toBe('a31mbcde');
    expect(plainText('é😀 ok')).toBe('é😀 ok');
    expect(Array.from(plainText('😀'.repeat(500)))).toHaveLength(128);
  });
});
