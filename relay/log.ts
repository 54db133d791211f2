/**
 * One-line JSON logs on stderr. stdout is reserved (the stdio mode speaks MCP on it). Callers pass
 * identifiers and outcomes only: never command text, file contents, passwords or tokens.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const wanted = process.env.LOG_LEVEL;
  return wanted === 'debug' || wanted === 'info' || wanted === 'warn' || wanted === 'error' ? order[wanted] : order.info;
}

/** LOG_LEVEL may come from .env, which is merged after the process starts. */
export function applyLogLevel(env: NodeJS.ProcessEnv): void {
  if (env.LOG_LEVEL) process.env.LOG_LEVEL = env.LOG_LEVEL;
}

export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < threshold()) return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
}

/**
 * Advice for the person running the relay (a command to paste): plain text on stderr, not JSON,
 * so the command reads and copies as it is. Shown at warn level.
 */
export function notice(text: string): void {
  if (order.warn < threshold()) return;
  process.stderr.write(`${text}\n`);
}
