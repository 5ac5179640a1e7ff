// What a join code derives: a public cluster id and a secret proof key, each stable for a code
// however it is spelled, different between codes, and unrelated to each other.

import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { formatJoinCode, generateJoinCode, parseJoinCode } from '../../../shared/join-code.js';
import { clusterId, proofKey } from '../../../main/engine/identity/cluster-key.js';

function canonical(text: string): string {
  const result = parseJoinCode(text);
  if (!result.ok) throw new Error(result.reason);
  return result.code;
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('nothing was thrown');
}

describe('clusterId', () => {
  it('is 16 hex characters, the same for every spelling of a code', () => {
    const code = generateJoinCode();
    const id = clusterId(code);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(clusterId(code)).toBe(id);
    expect(clusterId(canonical(code))).toBe(id);
    expect(clusterId(code.toLowerCase().replaceAll('-', ' '))).toBe(id);
    expect(clusterId(formatJoinCode(canonical(code)))).toBe(id);
  });

  it('differs between codes', () => {
    const ids = new Set(Array.from({ length: 200 }, () => clusterId(generateJoinCode())));
    expect(ids.size).toBe(200);
  });

  it('rejects an invalid code with its reason', () => {
    const code = generateJoinCode();
    const typo = `${code.slice(0, -1)}${code.endsWith('0') ? '1' : '0'}`;
    expect(() => clusterId(typo)).toThrow(DeskGridError);
    expect(() => clusterId(typo)).toThrow(/typo/);
    expect(thrown(() => proofKey('short'))).toMatchObject({ code: ErrorCode.JoinCode });
    expect(() => proofKey('short')).toThrow(/too short/);
  });
});

describe('proofKey', () => {
  it('is 32 bytes, stable, and different between codes', () => {
    const code = generateJoinCode();
    const key = proofKey(code);
    expect(key).toBeInstanceOf(Buffer);
    expect(key).toHaveLength(32);
    expect(proofKey(code.toLowerCase()).equals(key)).toBe(true);
    expect(proofKey(generateJoinCode()).equals(key)).toBe(false);
  });

  it('shares nothing with the public cluster id or the code', () => {
    for (let i = 0; i < 50; i += 1) {
      const code = generateJoinCode();
      const key = proofKey(code);
      const id = Buffer.from(clusterId(code), 'hex');
      expect(key.includes(id)).toBe(false);
      expect(key.subarray(0, 8).equals(id)).toBe(false);
      // No 4-byte run of the public id appears anywhere in the key.
      for (let start = 0; start + 4 <= id.length; start += 1) {
        expect(key.includes(id.subarray(start, start + 4))).toBe(false);
      }
      expect(key.toString('hex')).not.toContain(clusterId(code));
    }
  });
});
