/**
 * Revoked grants stop at once in every isolate, whatever copies of their access tokens the isolates
 * hold (worker/auth/token-cache.ts): every path that revokes a grant tells the team directory, which
 * every tool call asks, and forgets this isolate's copies. Three paths revoke: an admin changing a
 * user (admin-actions.ts), refresh-token reuse (refresh-reuse.ts), and a client revoking its own
 * refresh token at /token (RFC 7009, followClientRevocation below).
 */
import { teamDirectory } from '../team/team-directory.ts';
import { forgetGrant } from './token-cache.ts';
import { tokenForm, tokenParts } from './token-form.ts';

/** Call before the provider deletes the grants, so no moment passes with the grant gone from one and not the other. */
export async function announceRevokedGrants(env: Env, userId: string, grantIds: readonly string[]): Promise<void> {
  if (grantIds.length === 0) return;
  await teamDirectory(env).revokeGrants([...grantIds]);
  for (const grantId of grantIds) forgetGrant(userId, grantId);
}

/**
 * A revocation request at /token (a form with `token` and no `grant_type`): the provider answers
 * 200 whatever it did, so what it did is read from KV. A grant that existed before and is gone after
 * was revoked (the client revoked its refresh token): it is announced. An access token revoked on
 * its own is forgotten here; other isolates may serve it until their copy's minute is up.
 */
export async function followClientRevocation(request: Request, env: Env, next: (request: Request) => Promise<Response>): Promise<Response> {
  const form = await tokenForm(request);
  const token = form?.get('token') ?? null;
  const parts = token !== null && form?.get('grant_type') === null ? tokenParts(token) : null;
  if (!parts) return next(request);
  const grantKey = `grant:${parts.userId}:${parts.grantId}`;
  const existed = (await env.OAUTH_KV.get(grantKey)) !== null;
  const response = await next(request);
  forgetGrant(parts.userId, parts.grantId);
  if (existed && response.ok && (await env.OAUTH_KV.get(grantKey)) === null) await announceRevokedGrants(env, parts.userId, [parts.grantId]);
  return response;
}
