// Preloaded into a submitter under test (`node --import peak-memory.js deskgrid run ...`): as the
// process exits it writes its own peak resident memory (VmHWM of /proc/self/status, in kB) to the
// file named by DESKGRID_BENCH_PEAK_FILE. Read from inside at the very end, the figure covers the
// whole run, which a parent polling /proc/<pid>/status could miss the last moments of.

import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env['DESKGRID_BENCH_PEAK_FILE'];
if (file !== undefined) {
  process.once('exit', () => {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
    writeFileSync(file, kb);
  });
}
