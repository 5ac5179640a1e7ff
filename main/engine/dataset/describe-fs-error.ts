// Turns a Node file-system error into a few plain words, so dataset messages stay one readable line
// instead of carrying "EACCES: permission denied, open '/long/path'".

const REASONS: Partial<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOENT: 'it no longer exists',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'input/output error',
  EBUSY: 'it is busy',
};

/** A short, lower-case reason for a failed file-system call. */
export function describeFsError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const reason = typeof code === 'string' ? REASONS[code] : undefined;
  if (reason !== undefined) return reason;
  if (error instanceof Error && error.message) return error.message;
  return String(error);
}
