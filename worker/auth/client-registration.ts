/**
 * Checks on dynamic client registration (RFC 7591) before the OAuth provider stores a client.
 * Anyone may register, and what they register is shown on consent pages and stored for 90 days,
 * so sizes are capped and redirect URIs must be exactly what will be compared later: a URI with
 * surrounding whitespace or control characters is refused rather than trimmed, because a trimmed
 * copy would differ from what the client sends at /authorize.
 *
 * The body itself is already capped by worker/body-limits.ts (REGISTER_BODY_LIMIT_BYTES).
 */
import { z } from 'zod';

export const MAX_CLIENT_NAME_CHARS = 200;
export const MAX_REDIRECT_URIS = 10;
export const MAX_REDIRECT_URI_CHARS = 2000;
/** Every other string field (client_uri, logo_uri, scope, software_id, ...) and array item. */
export const MAX_METADATA_STRING_CHARS = 2000;
/** Every other array field (contacts, grant_types, response_types). */
export const MAX_METADATA_ARRAY_ITEMS = 10;

// C0 and C1 controls, and the separators that JSON carries but no URI or name should.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const WHITESPACE = /\s/;

type RegistrationError = { error: 'invalid_redirect_uri' | 'invalid_client_metadata'; error_description: string };

function redirectUriProblem(uri: unknown, index: number): string | null {
  if (typeof uri !== 'string') return `redirect_uris[${index}] must be a string`;
  if (uri.length === 0) return `redirect_uris[${index}] is empty`;
  if (uri.length > MAX_REDIRECT_URI_CHARS) return `redirect_uris[${index}] is longer than ${MAX_REDIRECT_URI_CHARS} characters`;
  if (uri.trim() !== uri) return `redirect_uris[${index}] has whitespace around it`;
  if (WHITESPACE.test(uri) || CONTROL.test(uri)) return `redirect_uris[${index}] contains whitespace or control characters`;
  return null;
}

const metadataValue = z.union([
  z.string().max(MAX_METADATA_STRING_CHARS),
  z.number(),
  z.boolean(),
  z.null(),
  z.array(z.string().max(MAX_METADATA_STRING_CHARS)).max(MAX_METADATA_ARRAY_ITEMS),
  // jwks: a key set, bounded by the body limit.
  z.record(z.string(), z.unknown()),
]);

/** The RFC 7591 error for a registration body, or null when it may go on to the provider. */
export function registrationProblem(body: unknown): RegistrationError | null {
  const object = z.record(z.string(), z.unknown()).safeParse(body);
  if (!object.success || Array.isArray(body))
    return { error: 'invalid_client_metadata', error_description: 'The body must be a JSON object of client metadata.' };
  const fields = object.data;
  const uris = fields['redirect_uris'];
  if (uris !== undefined) {
    if (!Array.isArray(uris)) return { error: 'invalid_redirect_uri', error_description: 'redirect_uris must be an array of strings.' };
    if (uris.length > MAX_REDIRECT_URIS)
      return { error: 'invalid_redirect_uri', error_description: `At most ${MAX_REDIRECT_URIS} redirect_uris may be registered.` };
    for (const [index, uri] of uris.entries()) {
      const problem = redirectUriProblem(uri, index);
      if (problem) return { error: 'invalid_redirect_uri', error_description: `${problem}.` };
    }
  }
  const name = fields['client_name'];
  if (name !== undefined) {
    if (typeof name !== 'string') return { error: 'invalid_client_metadata', error_description: 'client_name must be a string.' };
    if (name.length > MAX_CLIENT_NAME_CHARS)
      return { error: 'invalid_client_metadata', error_description: `client_name is longer than ${MAX_CLIENT_NAME_CHARS} characters.` };
    if (CONTROL.test(name)) return { error: 'invalid_client_metadata', error_description: 'client_name contains control characters.' };
  }
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'redirect_uris' || key === 'client_name') continue;
    if (key.length > 100) return { error: 'invalid_client_metadata', error_description: 'A metadata field name is longer than 100 characters.' };
    if (!metadataValue.safeParse(value).success) {
      return {
        error: 'invalid_client_metadata',
        error_description: `${key} is too long (strings up to ${MAX_METADATA_STRING_CHARS} characters, lists up to ${MAX_METADATA_ARRAY_ITEMS} items).`,
      };
    }
  }
  return null;
}

/** POST /register: refuse oversized or ambiguous metadata with 400, else let `next` (the provider) register. */
export async function checkRegistration(request: Request, next: (request: Request) => Promise<Response>): Promise<Response> {
  if (request.method !== 'POST') return next(request);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(await request.clone().arrayBuffer()));
  } catch {
    return Response.json(
      { error: 'invalid_client_metadata', error_description: 'The body is not valid JSON.' },
      { status: 400, headers: { 'Cache-Control': 'no-store' } },
    );
  }
  const problem = registrationProblem(body);
  if (problem) return Response.json(problem, { status: 400, headers: { 'Cache-Control': 'no-store' } });
  return next(request);
}
