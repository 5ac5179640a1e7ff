// How many jobs a submitter keeps on a node: tiny jobs many per core; jobs of 8 to 150 ms up to
// 150 ms of work queued per core beside the running one, so that a node topped up once half
// empty gets them two or more to a message; long jobs one queued per core.

import { describe, expect, it } from 'vitest';
import { PipelineDepth } from '../../../main/engine/remote/pipeline-depth.js';

function after(ms: number): PipelineDepth {
  const depth = new PipelineDepth();
  depth.observe(ms);
  return depth;
}

describe('PipelineDepth (submitter side)', () => {
  it('holds two per core before any job was measured, and none for no cores', () => {
    expect(new PipelineDepth().capacity(3)).toBe(6);
    expect(after(50).capacity(0)).toBe(0);
  });

  it('queues tiny jobs deep', () => {
    expect(after(0.1).capacity(1)).toBe(64);
    expect(after(1).capacity(2)).toBe(16);
  });

  it('holds 50 ms jobs four per core, so that they go two to a message', () => {
    expect(after(50).capacity(1)).toBe(4);
    expect(after(50).capacity(2)).toBe(8);
    expect(after(8).capacity(1)).toBe(4);
    expect(after(75).capacity(1)).toBe(3);
  });

  it('holds long jobs two per core: the running one and one queued', () => {
    expect(after(150).capacity(1)).toBe(2);
    expect(after(10_000).capacity(4)).toBe(8);
  });
});
