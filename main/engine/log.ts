// The engine's structured logger: silent by default, JSON lines on stderr at or above the level
// named by DESKGRID_LOG (debug, info, warn, error). Levels: debug per message, info for state
// changes, warn for rejected input and restarts, error for broken invariants.

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function threshold(): number {
  const name = process.env['DESKGRID_LOG'];
  return name && name in LEVELS ? LEVELS[name as Level] : Number.POSITIVE_INFINITY;
}

/** A logger for one module; `scope` names it in every line. */
export function createLogger(scope: string): Logger {
  const min = threshold();
  const write = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    process.stderr.write(`${JSON.stringify({ t: Date.now(), level, scope, message, ...fields })}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
