/** Reading the browser's cookies, for the sign-in session and the CSRF token alike. */

/** The value of cookie `name` on this request, or null. */
export function readCookie(request: Request, name: string): string | null {
  for (const part of (request.headers.get('Cookie') ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}
