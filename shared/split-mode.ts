// How a dataset is cut into jobs: the names `deskgrid run --split`, the Node API's `split` and the
// UI's submit form all accept, declared once. (A numeric range is not a split mode: it has no file.)

export const SPLIT_MODES = ['lines', 'csv', 'jsonl', 'json', 'files'] as const;

export type SplitMode = (typeof SPLIT_MODES)[number];

export function isSplitMode(text: string): text is SplitMode {
  return (SPLIT_MODES as readonly string[]).includes(text);
}

/** The usage error's text for a split mode that is none of these. */
export function unknownSplitMode(text: string): string {
  return `unknown split mode "${text}" (use ${SPLIT_MODES.slice(0, -1).join(', ')} or ${SPLIT_MODES.at(-1) ?? ''})`;
}
