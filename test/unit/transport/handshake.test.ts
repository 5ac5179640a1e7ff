// The join-code proof (main/engine/transport/handshake.ts): an HMAC bound to the proof key, the
// sender's role, both certificates' ids and the TLS session's keying material. Changing any of
// them makes the proof fail; a malformed proof fails without throwing.

import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../../shared/join-code.js';
import { proofKey } from '../../../main/engine/identity/cluster-key.js';
import { computeProof, verifyProof, type ProofInput } from '../../../main/engine/transport/handshake.js';

function nodeId(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

function baseInput(): ProofInput {
  return {
    proofKey: proofKey(generateJoinCode()),
    role: 'submitter',
    keyingMaterial: randomBytes(32),
    senderId: nodeId('sender'),
    receiverId: nodeId('receiver'),
  };
}

describe('computeProof / verifyProof', () => {
  it('verifies a proof made from the same inputs, and is deterministic', () => {
    const input = baseInput();
    const proof = computeProof(input);
    expect(proof).toMatch(/^[0-9a-f]{64}$/);
    expect(computeProof({ ...input, keyingMaterial: Buffer.from(input.keyingMaterial) })).toBe(proof);
    expect(verifyProof(input, proof)).toBe(true);
  });

  it('fails with another proof key (another join code)', () => {
    const input = baseInput();
    const proof = computeProof(input);
    expect(verifyProof({ ...input, proofKey: proofKey(generateJoinCode()) }, proof)).toBe(false);
  });

  it('fails for the other role (a proof cannot be reflected back at its sender)', () => {
    const input = baseInput();
    const proof = computeProof(input);
    expect(verifyProof({ ...input, role: 'node' }, proof)).toBe(false);
    // Even with sender and receiver swapped, as a reflected hello would be checked.
    expect(
      verifyProof({ ...input, role: 'node', senderId: input.receiverId, receiverId: input.senderId }, proof),
    ).toBe(false);
  });

  it('fails with other keying material (another TLS session: a relay or a replay)', () => {
    const input = baseInput();
    const proof = computeProof(input);
    expect(verifyProof({ ...input, keyingMaterial: randomBytes(32) }, proof)).toBe(false);
    const flipped = Buffer.from(input.keyingMaterial);
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    expect(verifyProof({ ...input, keyingMaterial: flipped }, proof)).toBe(false);
  });

  it('fails for another sender id or another receiver id', () => {
    const input = baseInput();
    const proof = computeProof(input);
    expect(verifyProof({ ...input, senderId: nodeId('someone else') }, proof)).toBe(false);
    expect(verifyProof({ ...input, receiverId: nodeId('another node') }, proof)).toBe(false);
    expect(verifyProof({ ...input, senderId: input.receiverId, receiverId: input.senderId }, proof)).toBe(
      false,
    );
  });

  it('does not let ids run into each other (the fields are separated)', () => {
    const input = baseInput();
    const joined = { ...input, senderId: 'ab', receiverId: 'cd' };
    const shifted = { ...input, senderId: 'a', receiverId: 'bcd' };
    expect(verifyProof(shifted, computeProof(joined))).toBe(false);
  });

  it('fails for a tampered proof', () => {
    const input = baseInput();
    const proof = computeProof(input);
    for (const at of [0, 31, 63]) {
      const digit = proof.charAt(at) === '0' ? '1' : '0';
      const tampered = proof.slice(0, at) + digit + proof.slice(at + 1);
      expect(verifyProof(input, tampered)).toBe(false);
    }
    expect(verifyProof(input, '0'.repeat(64))).toBe(false);
  });

  it('fails without throwing for a proof of the wrong length or not hex', () => {
    const input = baseInput();
    const proof = computeProof(input);
    for (const bad of [
      '',
      proof.slice(0, 62),
      `${proof}00`,
      proof.slice(0, 63),
      'zz'.repeat(32),
      'not hex',
    ]) {
      expect(() => verifyProof(input, bad)).not.toThrow();
      expect(verifyProof(input, bad)).toBe(false);
    }
  });
});
