/** `node relay/main.ts …` is `mcp-remote-exec relay …` (kept for the README's LAN-box line and npm start). */
import { runCli } from './cli.ts';

await runCli(['relay', ...process.argv.slice(2)]);
