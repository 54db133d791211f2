/** The Worker's admin API as a test (or a script) calls it: JSON over HTTP with Basic auth. */
import type { TestWorker } from './worker.ts';

export interface AdminReply {
  status: number;
  /** The JSON answer, or { text } for JSONL and plain text. */
  body: Record<string, unknown>;
  text: string;
}

export function adminApi(worker: TestWorker, credentials = { username: worker.adminUser, password: worker.adminPassword }) {
  const authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const send = async (method: string, path: string, body?: unknown): Promise<AdminReply> => {
    const response = await fetch(`${worker.url}/admin/api/${path}`, {
      method,
      headers: { Authorization: authorization, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> = { text };
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      // JSONL or plain text: the text is in .text.
    }
    return { status: response.status, body: parsed, text };
  };
  return {
    get: (path: string) => send('GET', path),
    post: (path: string, body: unknown) => send('POST', path, body),
    patch: (path: string, body: unknown) => send('PATCH', path, body),
    put: (path: string, body: unknown) => send('PUT', path, body),
    delete: (path: string) => send('DELETE', path),
  };
}

/**
 * A team for a test: each user added (with their groups) and the policy set, through the admin
 * API. Answers each user's one-time password.
 */
export async function addTeam(worker: TestWorker, users: ReadonlyArray<readonly [string, readonly string[]]>, policy: unknown): Promise<Map<string, string>> {
  const admin = adminApi(worker);
  const passwords = new Map<string, string>();
  for (const [username, groups] of users) {
    const added = await admin.post('users', { username, groups });
    if (added.status !== 201) throw new Error(`could not add ${username}: ${added.text}`);
    passwords.set(username, String(added.body.password));
  }
  const saved = await admin.put('policy', policy);
  if (saved.status !== 200) throw new Error(`could not set the policy: ${saved.text}`);
  return passwords;
}
