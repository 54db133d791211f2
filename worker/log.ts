/**
 * Structured log lines for Workers Logs / `wrangler dev`. Callers pass identifiers and outcomes;
 * never tokens, passwords, command output or file contents.
 */
export function logEvent(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg: message, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}
