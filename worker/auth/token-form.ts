/** What the wrappers around the provider's /token read of a request: its form, and a token's parts. */

/** The request's form, read from a clone (the provider reads the body itself); null when it cannot be read. */
export async function tokenForm(request: Request): Promise<URLSearchParams | null> {
  try {
    return new URLSearchParams(new TextDecoder().decode(await request.clone().arrayBuffer()));
  } catch {
    return null;
  }
}

/** The provider's tokens are USER:GRANT:SECRET; anything else it refuses itself. */
export function tokenParts(token: string): { userId: string; grantId: string } | null {
  const [userId, grantId, secret, ...rest] = token.split(':');
  return userId && grantId && secret && rest.length === 0 ? { userId, grantId } : null;
}
