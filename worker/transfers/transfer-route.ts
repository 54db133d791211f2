/**
 * /transfer/<id>/<token>: the one-time links made by ssh_request_upload (PUT the bytes) and
 * ssh_request_download (GET them). The bytes stream between the HTTP client and the relay with
 * flow control; nothing is buffered whole. An unknown, used, expired or foreign link all get the
 * same 404, and the token is never logged.
 */
import { waitUntil } from 'cloudflare:workers';
import type { ErrorCode, Outcome, ToolError } from '../../shared/errors.ts';
import { adviceFor } from '../../shared/errors.ts';
import { sha256Hex } from '../auth/password-hash.ts';
import type { AuditEntry, StartedEntry } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';
import { qualifiedName } from '../team/fleet.ts';
import { beginAudit, finishAudit, gateCall, recordCall } from '../team/gate-call.ts';
import { RelayAdapter } from '../relay/relay-adapter.ts';
import type { TransferRecord } from './transfer-link.ts';
import { formatCount } from '../../shared/format-count.ts';

export const TRANSFER_PATH = /^\/transfer\/([0-9a-f]{32})\/([A-Za-z0-9_-]{43})$/;

function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'invalid_argument':
      return 400;
    case 'permission_denied':
    case 'access_denied':
      return 403;
    case 'path_not_found':
    case 'host_not_configured':
      return 404;
    case 'already_exists':
    case 'path_is_directory':
    case 'not_a_directory':
      return 409;
    case 'file_too_large':
      return 413;
    case 'relay_timeout':
      return 504;
    case 'internal':
      return 500;
    case 'relay_not_connected':
    case 'relay_busy':
    case 'host_busy':
    case 'relay_shutting_down':
      return 503;
    default:
      return 502;
  }
}

function problem(error: ToolError): Response {
  return Response.json({ error: error.code, message: error.message, advice: adviceFor(error.code) }, { status: statusFor(error.code) });
}

const unknownLink = (): Response =>
  Response.json({ error: 'not_found', message: 'This transfer link is unknown, already used, or expired. Ask the assistant for a new one.' }, { status: 404 });

export async function handleTransfer(request: Request, env: Env, id: string, token: string): Promise<Response> {
  const kind: TransferRecord['kind'] | null = request.method === 'PUT' ? 'upload' : request.method === 'GET' ? 'download' : null;
  if (!kind) return new Response('Use PUT to upload or GET to download.', { status: 405, headers: { Allow: 'GET, PUT' } });
  const link = env.TRANSFER_LINK.get(env.TRANSFER_LINK.idFromName(id));
  const tokenHash = await sha256Hex(token);
  const record = await link.inspect(tokenHash, kind);
  if (!record) return unknownLink();
  // The link works only while its owner may still do this there: a disabled user's links, and those of a revoked sign-in, die with them.
  const started = Date.now();
  const tool = kind === 'upload' ? 'transfer_link_upload' : 'transfer_link_download';
  const startedEntry = (relay: string | null): StartedEntry => ({
    time: new Date(started).toISOString(),
    user: record.username,
    client: record.client,
    relay,
    host: record.host,
    tool,
    target: record.ctid !== undefined ? `ct ${record.ctid}:${record.path}` : record.path,
  });
  /** Log how the transfer went and complete its audit row (`bytes` counted only when it went well). */
  const settled = async (auditId: string, event: string, outcome: Outcome<unknown>, bytes: number | null): Promise<void> => {
    logEvent('info', event, { transferId: id, userId: record.userId, host: record.host, ok: outcome.ok, ...(outcome.ok ? {} : { code: outcome.error.code }) });
    const failed = outcome.ok ? null : outcome.error.code;
    await finishAudit(
      env,
      auditId,
      { outcome: failed === null ? 'ok' : 'error', code: failed, exitCode: null, bytes: failed === null ? bytes : null, durationMs: Date.now() - started },
      tool,
    );
  };
  const audit = (outcome: AuditEntry['outcome'], code: string | null, relay: string | null): Promise<void> =>
    recordCall(env, { ...startedEntry(relay), outcome, code, exitCode: null, bytes: null, durationMs: Date.now() - started });
  // The gate records a refusal itself; the started row of a call let through is written after the
  // link is claimed (beginAudit), so a link claimed by another request leaves no started row behind.
  const gate = await gateCall(env, {
    entry: startedEntry(null),
    requestedHost: qualifiedName(record.relay, record.host),
    needed: kind === 'upload' ? 'operator' : 'viewer',
    begin: false,
    ...(record.grantId !== undefined ? { grantId: record.grantId } : {}),
  });
  if (!gate.outcome.ok) return problem(gate.outcome.error);
  const route = gate.outcome.value.route;
  const relay = route.relay;
  // The link names one relay's host; the gate must have found exactly that one.
  if (relay !== record.relay || route.host !== record.host) {
    await audit('error', 'host_not_configured', null);
    return unknownLink();
  }
  const adapter = new RelayAdapter(env, record.userId);

  if (kind === 'upload') {
    const declared = request.headers.get('Content-Length');
    if (declared === null || !/^\d+$/.test(declared)) {
      return Response.json({ error: 'length_required', message: 'Send the file with a Content-Length (curl -T does).' }, { status: 411 });
    }
    const size = Number(declared);
    if (size > record.maxBytes) {
      return problem({
        code: 'file_too_large',
        message: `The upload is ${formatCount(size)} bytes, more than the ${formatCount(record.maxBytes)} this link accepts; nothing was written.`,
      });
    }
    if (!(await link.claim(tokenHash, kind))) return unknownLink();
    const row = await beginAudit(env, startedEntry(relay));
    if (!row.ok) return problem(row.error);
    const body = request.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
    const outcome = await adapter.writeFromBody(
      route,
      {
        ...(record.ctid !== undefined ? { ctid: record.ctid } : {}),
        path: record.path,
        ...(record.permissions !== undefined ? { permissions: record.permissions } : {}),
        overwrite: record.overwrite,
        maxBytes: record.maxBytes,
      },
      body,
      size,
    );
    // Queued now, written with this isolate's next batch of audit writes: the answer does not wait for it.
    waitUntil(settled(row.value, 'transfer upload finished', outcome, size));
    if (!outcome.ok) return problem(outcome.error);
    const result = outcome.value;
    return Response.json(
      { path: result.path, host: record.host, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced },
      { status: 201 },
    );
  }

  if (!(await link.claim(tokenHash, kind))) return unknownLink();
  const row = await beginAudit(env, startedEntry(relay));
  if (!row.ok) return problem(row.error);
  const outcome = await adapter.readAsStream(route, {
    ...(record.ctid !== undefined ? { ctid: record.ctid } : {}),
    path: record.path,
    maxBytes: record.maxBytes,
  });
  // Recorded when the bytes start to flow; a download the client abandons still shows here.
  waitUntil(settled(row.value, 'transfer download started', outcome, null));
  if (!outcome.ok) return problem(outcome.error);
  const name = record.path.split('/').pop() || 'download';
  return new Response(outcome.value, {
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      'Cache-Control': 'no-store',
    },
  });
}
