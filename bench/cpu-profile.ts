/**
 * Where a tool call's CPU goes in the local Worker: a CPU profile of workerd (every Durable Object
 * shares its one thread locally) while one client makes CALLS sequential calls of TOOL, taken
 * through the DevTools inspector that `wrangler dev` exposes (test/harness/worker.ts inspectorPort).
 * Prints the functions with the most self time and the project's functions with the most total
 * time, per call. Not a pass/fail test; a tool for deciding what to cut.
 *
 * Run: node bench/cpu-profile.ts   (TOOL=relay_ping|ssh_exec_command|healthz, CALLS=300, MCP_CLIENT_ERA=…,
 * PROFILE_OUT=file.cpuprofile to keep the raw profile for Chrome DevTools)
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { z } from 'zod';
import { connectMcpClient, defaultEra } from '../test/harness/mcp-client.ts';
import { startStack } from '../test/harness/stack.ts';

const CALLS = Number(process.env.CALLS ?? 300);
const TOOL = process.env.TOOL ?? 'ssh_exec_command';
const ARGS: Record<string, unknown> = TOOL === 'ssh_exec_command' ? { command: 'true' } : {};

const profileNode = z.object({
  id: z.number(),
  callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
  children: z.array(z.number()).optional(),
});
const profileSchema = z.object({ nodes: z.array(profileNode), samples: z.array(z.number()), timeDeltas: z.array(z.number()) });
type Profile = z.infer<typeof profileSchema>;

const targetList = z.array(z.object({ webSocketDebuggerUrl: z.string(), title: z.string().optional() }));

/** A minimal DevTools protocol client: send a method, await its result. */
async function inspector(url: string): Promise<{ send(method: string, params?: object): Promise<unknown>; close(): void }> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  let next = 1;
  const pending = new Map<number, (value: unknown) => void>();
  socket.on('message', (data) => {
    const message = z.object({ id: z.number().optional(), result: z.unknown().optional() }).safeParse(JSON.parse(String(data)));
    if (message.success && message.data.id !== undefined) pending.get(message.data.id)?.(message.data.result);
  });
  return {
    send(method, params = {}) {
      const id = next++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${method}: no answer from the inspector`)), 60_000);
        pending.set(id, (value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
    },
    close: () => socket.close(),
  };
}

/**
 * The source module of each line of the bundle wrangler dev runs (esbuild marks each module with a
 * `// path` comment), so a sample names worker/… or node_modules/… instead of index.js. The bundle
 * lives under .wrangler/tmp only while wrangler runs.
 */
function bundleModules(): string[] {
  const root = join(import.meta.dirname, '..', '.wrangler', 'tmp');
  const dirs = readdirSync(root)
    .filter((name) => name.startsWith('dev-'))
    .map((name) => join(root, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const bundle = dirs[0];
  if (!bundle) return [];
  let module = '';
  return readFileSync(join(bundle, 'index.js'), 'utf8')
    .split('\n')
    .map((line) => {
      const marker = /^\/\/ ((?:\.\.\/)*[\w@./-]+\.(?:ts|js|mjs|cjs))$/.exec(line);
      if (marker?.[1]) module = marker[1].replace(/^(\.\.\/)+/, '').replace(/^.*node_modules\//, 'nm/');
      return module;
    });
}

let modules: string[] = [];

function label(node: z.infer<typeof profileNode>): string {
  const line = node.callFrame.lineNumber;
  const file = node.callFrame.url.endsWith('index.js') ? (modules[line] ?? 'index.js') : node.callFrame.url || 'native';
  return `${node.callFrame.functionName || '(anonymous)'} ${file}:${line + 1}`;
}

/** The file part of a label (function names may hold spaces: `(garbage collector)`, `get name`). */
function fileOf(name: string): string {
  return name.slice(name.lastIndexOf(' ') + 1).replace(/:\d+$/, '');
}

function summarise(profile: Profile, calls: number): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const byModule = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((sample, index) => {
    const delta = (profile.timeDeltas[index] ?? 0) / 1000;
    const node = byId.get(sample);
    if (!node || node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(program)') return;
    all += delta;
    self.set(label(node), (self.get(label(node)) ?? 0) + delta);
    const module = fileOf(label(node));
    byModule.set(module, (byModule.get(module) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const ancestor = byId.get(id);
      if (!ancestor) break;
      const name = label(ancestor);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + delta);
    }
  });
  const top = (map: Map<string, number>, count: number, filter: (name: string) => boolean = () => true): string[] =>
    [...map.entries()]
      .filter(([name]) => filter(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, ms]) => `${(ms / calls).toFixed(3).padStart(8)} ms/call  ${name}`);
  return [
    `busy CPU: ${(all / calls).toFixed(2)} ms per call (${calls} calls)`,
    '',
    "self time by module (native: the runtime's own functions):",
    ...top(byModule, 25),
    '',
    'self time:',
    ...top(self, 40),
    '',
    'total time, project code:',
    ...top(total, 60, (name) => /^(worker|shared)\//.test(fileOf(name))),
    '',
    'total time, dependencies:',
    ...top(total, 40, (name) => fileOf(name).startsWith('nm/')),
  ].join('\n');
}

const stack = await startStack({ workerVars: { MCP_REMOTE_EXEC_TEST_TOOLS: process.env.COUNTING === '0' ? 'false' : 'true' } });
try {
  const client = await connectMcpClient(stack.worker.mcpUrl, { username: stack.worker.adminUser, password: stack.worker.adminPassword }, { era: defaultEra() });
  const healthz = `${stack.worker.url}/healthz`;
  const call = async (): Promise<void> => {
    // TOOL=healthz profiles the bench's platform floor (f): the same CPU a request costs before any tool.
    if (TOOL === 'healthz') {
      const response = await fetch(healthz);
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`/healthz answered ${response.status}`);
      return;
    }
    const result = await client.client.callTool({ name: TOOL, arguments: ARGS });
    if (result.isError) throw new Error(`${TOOL} failed: ${JSON.stringify(result.content)}`);
  };
  for (let index = 0; index < 30; index += 1) await call();
  const targets = targetList.parse(await (await fetch(`http://127.0.0.1:${stack.worker.inspectorPort}/json`)).json());
  const target = targets[0];
  if (!target) throw new Error('the inspector lists no target');
  const session = await inspector(target.webSocketDebuggerUrl);
  await session.send('Profiler.enable');
  await session.send('Profiler.setSamplingInterval', { interval: 250 });
  await session.send('Profiler.start');
  const started = performance.now();
  for (let index = 0; index < CALLS; index += 1) await call();
  const wall = performance.now() - started;
  const stopped = z.object({ profile: profileSchema }).parse(await session.send('Profiler.stop'));
  session.close();
  modules = bundleModules();
  if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(stopped.profile));
  process.stdout.write(`${TOOL}, ${defaultEra()} client: ${(wall / CALLS).toFixed(2)} ms wall per call\n${summarise(stopped.profile, CALLS)}\n`);
  await client.close();
} finally {
  await stack.stop();
}
