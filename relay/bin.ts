/** Entry of the `mcp-remote-exec` command (bundled to dist/mcp-remote-exec.mjs by `npm run build`). */
import { runCli } from './cli.ts';

await runCli(process.argv.slice(2));
