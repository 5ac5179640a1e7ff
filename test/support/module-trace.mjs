// Loaded with `node --import`: records the URL of every module the process resolves, one a line,
// in the file named by DESKGRID_MODULE_TRACE, so that a test can see what a command really loads.
// The resolve hook runs on Node's loader thread; it appends synchronously so nothing is lost when
// the process exits.

import { register } from 'node:module';

const file = process.env['DESKGRID_MODULE_TRACE'];
if (file === undefined) throw new Error('module-trace.mjs needs DESKGRID_MODULE_TRACE');

const hooks = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file } });
