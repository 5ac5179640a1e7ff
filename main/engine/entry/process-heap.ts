// The V8 heap of a long-lived DeskGrid process (`deskgrid run` holding a batch, `deskgrid node`,
// the app): run by default, V8 lets the old generation grow to several times what is live before
// it collects, and a batch's per-job bookkeeping is middle-aged garbage that fills it. Measured on
// w5 (100 000 tiny jobs through `deskgrid run`): 11 MB live at a heap snapshot, 31-37 MB of old
// generation at the peak, and 118-124 MB resident. Collecting once the old generation has grown by
// half, with the 4 MB semi-spaces the `deskgrid` command starts with (its first line: a young
// generation of 8 MB instead of up to 32), brought the peak to 86-88 MB at the same jobs per
// second, for about 5 us more of the submitter's garbage collection per job. 2 MB semi-spaces gave
// 80-86 MB for twice that; either setting alone, 101-111 MB. The semi-spaces cannot be changed
// once V8 runs; this factor can, as V8 reads it at every collection.

import { setFlagsFromString } from 'node:v8';

/** V8 collects the old generation once it has grown by this much since the last collection. */
const HEAP_GROWING_PERCENT = 50;

/**
 * For processes DeskGrid owns, never inside someone else's (the Node API leaves the host's heap
 * alone). A V8 that no longer knows the flag says so on stderr and runs on with its defaults.
 */
export function keepHeapSmall(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
