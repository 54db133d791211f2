import { z } from 'zod';
import { tokenParts } from '../auth/token-form.ts';

/** What completeAuthorization() stored with the grant, handed to every /mcp request as ctx.props. */
export const sessionProps = z.object({
  userId: z.string().min(1),
  username: z.string().min(1),
  /** The MCP client the user authorized (its registered name, else its id); for the audit log. */
  client: z.string().max(256).optional(),
});
export type SessionProps = z.infer<typeof sessionProps>;

/**
 * The OAuth grant of the request's access token (the provider's tokens are USER:GRANT:SECRET), so
 * the team directory can refuse a grant revoked since this isolate last read the token
 * (worker/team/revoked-grants.ts). The provider has already checked the token by the time this runs.
 */
export function grantIdOf(request: Request): string | undefined {
  // The provider's own bearer pattern, then its token's parts.
  const bearer = /^Bearer[\t ]+([^\s,]+)$/i.exec(request.headers.get('Authorization') ?? '')?.[1];
  return bearer === undefined ? undefined : tokenParts(bearer)?.grantId;
}
