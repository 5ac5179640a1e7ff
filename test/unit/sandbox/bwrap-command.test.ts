// The sandbox command lines are pure functions of a plan: what each binds, and in which order
// (bubblewrap applies its options in order: the private /tmp first, the job's folders over it,
// the root read-only last).

import { describe, expect, it } from 'vitest';
import { bwrapCommand } from '../../../main/engine/sandbox/bwrap-command.js';
import { macosProfile } from '../../../main/engine/sandbox/macos-profile.js';

const setup = {
  bwrap: '/usr/bin/bwrap',
  system: [
    { path: '/usr', kind: 'dir' as const },
    { path: '/lib', kind: 'symlink' as const, target: 'usr/lib' },
  ],
  runtime: ['/usr/local', '/opt/deskgrid'],
};
const plan = { readOnly: ['/data/cache/bundles/abc'], readWrite: ['/data/jobs/s1'], network: true };

describe('bwrapCommand', () => {
  it('binds the plan at its own paths over a private /tmp, then makes the root read-only', () => {
    const line = bwrapCommand(setup, { command: '/usr/bin/node', args: ['worker.js'] }, plan);
    expect(line.command).toBe('/usr/bin/bwrap');
    const args = line.args.join(' ');
    expect(args).toContain('--ro-bind /usr /usr');
    expect(args).toContain('--symlink usr/lib /lib');
    expect(args).toContain('--ro-bind /opt/deskgrid /opt/deskgrid');
    // Inside /usr already: not bound twice.
    expect(args).not.toContain('--ro-bind /usr/local');
    expect(args).toContain('--ro-bind /data/cache/bundles/abc /data/cache/bundles/abc');
    expect(args).toContain('--bind /data/jobs/s1 /data/jobs/s1');
    expect(line.args.indexOf('--tmpfs')).toBeLessThan(line.args.indexOf('--bind'));
    expect(line.args.indexOf('--bind')).toBeLessThan(line.args.indexOf('--remount-ro'));
    expect(args).toContain('--unshare-all --share-net --die-with-parent --new-session');
    expect(line.args.slice(-5)).toEqual(['--chdir', '/data/jobs/s1', '--', '/usr/bin/node', 'worker.js']);
  });

  it('keeps the network namespace unshared when jobs may not use the network', () => {
    const line = bwrapCommand(setup, { command: 'node', args: [] }, { ...plan, network: false });
    expect(line.args).toContain('--unshare-all');
    expect(line.args).not.toContain('--share-net');
  });
});

describe('macosProfile', () => {
  it('denies by default and allows writing only in the job folders', () => {
    const profile = macosProfile(['/Applications/DeskGrid.app'], { ...plan, network: false });
    expect(profile).toContain('(deny default)');
    expect(profile).toContain('(allow file-write* (literal "/dev/null") (subpath "/data/jobs/s1"))');
    expect(profile).toContain('(subpath "/data/cache/bundles/abc")');
    expect(profile).not.toContain('(allow network*)');
  });

  it('escapes quotes in paths', () => {
    expect(macosProfile([], { readOnly: ['/a"b'], readWrite: [], network: true })).toContain(
      '(subpath "/a\\"b")',
    );
  });
});
