// results.jsonl lines: the same bytes whatever path wrote them, bigints included.

import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { toResultLine } from '../../shared/result-line.js';

function result(value: unknown): JobResult {
  return {
    index: 3,
    input: 'x',
    status: 'done',
    value,
    stdout: '',
    stderr: '',
    error: null,
    exitCode: null,
    node: 'n',
    attempts: 1,
    startedAt: 1,
    endedAt: 2,
  };
}

describe('toResultLine', () => {
  it('writes the fields in their documented order', () => {
    expect(toResultLine(result({ a: [1, 'b'] }))).toBe(
      '{"index":3,"input":"x","status":"done","value":{"a":[1,"b"]},"stdout":"","stderr":"","error":null,"exitCode":null,"node":"n","attempts":1,"startedAt":1,"endedAt":2}',
    );
  });

  it('writes a bigint anywhere in the value as a string', () => {
    const line = toResultLine(result({ big: 12345678901234567890n, list: [1n] }));
    expect(JSON.parse(line)).toMatchObject({ value: { big: '12345678901234567890', list: ['1'] } });
  });

  it('still refuses a value JSON cannot hold for another reason', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => toResultLine(result(circular))).toThrow(TypeError);
  });
});
