// Makes the compiled CLI executable. `npx deskgrid` runs the package's bin file directly, and in a
// fresh clone npm links that bin before `prepare` has built it, so npm never sets its mode; tsc
// writes a new file without it.

import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

chmodSync(fileURLToPath(new URL('../dist/main/cli/main.js', import.meta.url)), 0o755);
