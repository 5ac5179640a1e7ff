// Limits shared by the text splitters. A file with no line breaks (a binary file, a minified JSON
// given to the lines splitter) would otherwise be buffered whole, breaking the bounded-memory promise.

/** Longest line (lines, jsonl) or CSV row, in characters, before the dataset is rejected. */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;
