// What the UI tells about a dropped .py file before it runs: its top-level functions and
// whether it has an `if __name__ == "__main__":` block, and from that what to do by default:
// call the function for each item when there is exactly one and no main block (a file of
// helpers), else run the file as a program (a script). Read from the text, without Python:
// only unindented `def`/`async def` lines count, which is what "top level" means.

import { readFile } from 'node:fs/promises';

export interface PythonOutline {
  /** Top-level functions, in file order, without private (_underscore) ones. */
  functions: string[];
  hasMainBlock: boolean;
}

const TOP_LEVEL_DEF = /^(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(/gm;
const MAIN_BLOCK =
  /^if[ \t(]+(?:__name__[ \t]*==[ \t]*(['"])__main__\1|(['"])__main__\2[ \t]*==[ \t]*__name__)[ \t)]*:/m;

export function outlinePython(text: string): PythonOutline {
  const functions: string[] = [];
  for (const match of text.matchAll(TOP_LEVEL_DEF)) {
    const name = match[1];
    if (name !== undefined && !name.startsWith('_') && !functions.includes(name)) functions.push(name);
  }
  return { functions, hasMainBlock: MAIN_BLOCK.test(text) };
}

/** The function to call by default, or null to run the file as a program. */
export function defaultFunction(outline: PythonOutline): string | null {
  return outline.functions.length === 1 && !outline.hasMainBlock ? (outline.functions[0] ?? null) : null;
}

/** The outline of a .py file (null for other files). */
export async function outlinePythonFile(path: string): Promise<PythonOutline | null> {
  if (!/\.pyw?$/i.test(path)) return null;
  return outlinePython(await readFile(path, 'utf8'));
}

/**
 * The computation to run for a script and the UI's choice: `FILE.py:FUNCTION` to call a function
 * (`choice` names it, or undefined: the default), the file itself to run it as a program.
 */
export function chosenComputation(
  path: string,
  outline: PythonOutline | null,
  choice: string | null | undefined,
): { computation: string; function: string | null } {
  if (outline === null) return { computation: path, function: null };
  const fn = choice === undefined ? defaultFunction(outline) : choice;
  return fn === null ? { computation: path, function: null } : { computation: `${path}:${fn}`, function: fn };
}
