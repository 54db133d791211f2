/**
 * A stand-in for the npm registry on loopback, so that `npm install -g <packed tarball>` in the
 * packaged-relay test runs as it would against registry.npmjs.org, yet never leaves the machine.
 *
 * It serves the project's production dependencies exactly as package-lock.json pins them, in the
 * registry's own formats: a packument per package name (name, dist-tags, versions with their
 * dependencies, bin, engines, os/cpu and dist.tarball + dist.integrity), and the tarballs
 * themselves, read from the local npm cache by their integrity (the project's `npm install` put
 * them there: cacache's content-v2 layout). npm checks each tarball against that integrity, as it
 * does for the real registry. Anything else is a 404, which fails the install loudly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';

const lockEntry = z
  .object({
    name: z.string().optional(),
    version: z.string(),
    resolved: z.string().optional(),
    integrity: z.string().optional(),
    dev: z.boolean().optional(),
    dependencies: z.record(z.string(), z.string()).optional(),
    optionalDependencies: z.record(z.string(), z.string()).optional(),
    peerDependencies: z.record(z.string(), z.string()).optional(),
    peerDependenciesMeta: z.record(z.string(), z.unknown()).optional(),
    bin: z.union([z.string(), z.record(z.string(), z.string())]).optional(),
    engines: z.record(z.string(), z.string()).optional(),
    os: z.array(z.string()).optional(),
    cpu: z.array(z.string()).optional(),
    hasInstallScript: z.boolean().optional(),
  })
  .loose();
const lockfile = z.object({ packages: z.record(z.string(), lockEntry) });

export interface RegistryStandIn {
  url: string;
  /** Tarball requests answered 404 (not in the cache), for the test's error message. */
  missing: string[];
  stop(): Promise<void>;
}

/** Where cacache keeps content with this integrity (sha512-<base64>). */
function contentPath(cache: string, integrity: string): string {
  const [algorithm, digest] = integrity.split(' ')[0]?.split('-', 2) ?? [];
  const hex = Buffer.from(digest ?? '', 'base64').toString('hex');
  return join(cache, '_cacache', 'content-v2', algorithm ?? 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

/** Packuments (name → version → manifest) and tarballs (file → integrity) of the lockfile's production packages. */
function fromLockfile(projectRoot: string, base: string): { packuments: Map<string, Record<string, Record<string, unknown>>>; tarballs: Map<string, string> } {
  const { packages } = lockfile.parse(JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8')));
  const packuments = new Map<string, Record<string, Record<string, unknown>>>();
  const tarballs = new Map<string, string>();
  for (const [path, entry] of Object.entries(packages)) {
    // The root, and what only development needs, are not the package's dependencies.
    if (path === '' || entry.dev === true || !path.includes('node_modules/') || entry.integrity === undefined) continue;
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const file = `${encodeURIComponent(name)}-${entry.version}.tgz`;
    tarballs.set(file, entry.integrity);
    const { dependencies, optionalDependencies, peerDependencies, peerDependenciesMeta, bin, engines, os, cpu, hasInstallScript } = entry;
    const versions = packuments.get(name) ?? {};
    versions[entry.version] = {
      name,
      version: entry.version,
      ...(dependencies ? { dependencies } : {}),
      ...(optionalDependencies ? { optionalDependencies } : {}),
      ...(peerDependencies ? { peerDependencies } : {}),
      ...(peerDependenciesMeta ? { peerDependenciesMeta } : {}),
      ...(bin ? { bin } : {}),
      ...(engines ? { engines } : {}),
      ...(os ? { os } : {}),
      ...(cpu ? { cpu } : {}),
      ...(hasInstallScript ? { hasInstallScript } : {}),
      dist: { integrity: entry.integrity, tarball: `${base}/-/tarballs/${file}` },
    };
    packuments.set(name, versions);
  }
  return { packuments, tarballs };
}

export async function startRegistryStandIn(projectRoot: string, npmCache: string): Promise<RegistryStandIn> {
  let served: ReturnType<typeof fromLockfile> = { packuments: new Map(), tarballs: new Map() };
  const missing: string[] = [];
  const server: Server = createServer((request, response) => {
    // Kept encoded: a tarball's file name is the encoded package name (a scope's "/" as %2F).
    const path = new URL(request.url ?? '/', 'http://stand-in').pathname;
    if (path.startsWith('/-/tarballs/')) {
      const integrity = served.tarballs.get(path.slice('/-/tarballs/'.length));
      const content = integrity === undefined ? undefined : contentPath(npmCache, integrity);
      if (content === undefined || !existsSync(content)) {
        missing.push(path);
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(content));
      return;
    }
    const name = decodeURIComponent(path.slice(1));
    const versions = served.packuments.get(name);
    if (versions === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
      return;
    }
    const latest = Object.keys(versions).at(-1) ?? '';
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, 'dist-tags': { latest }, versions }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  served = fromLockfile(projectRoot, url);
  return {
    url,
    missing,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
