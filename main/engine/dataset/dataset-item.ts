// One item of a dataset, as the splitters produce it.

export interface DatasetItem {
  /** 0-based position in the dataset; stable across runs over the same file (resume relies on it). */
  index: number;
  /** What the job receives: the item itself, or for files the absolute path of the file. */
  input: unknown;
  /** What results.jsonl records as `input`: the item, or for files the path relative to the dataset folder. */
  record: unknown;
  /** The input is a file path (programs with --stdin get the file's content). */
  isFile: boolean;
}
