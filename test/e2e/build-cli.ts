import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../harness/worker.ts';

/** Vitest global setup: bundle dist/mcp-remote-exec.mjs (npm run build) before the e2e files run. */
export default function setup(): void {
  execFileSync('npm', ['run', '-s', 'build'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
}
