/** `node relay/main.ts …` is `mcp-remote-exec relay …` from a checkout (npm start and `npm run relay` use it). */
import { runCli } from './cli.ts';

await runCli(['relay', ...process.argv.slice(2)]);
