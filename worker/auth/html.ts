/** Escape text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

/**
 * Headers for every page we render: no framing (clickjacking), no inline script, forms may post
 * only to us and redirect to the client's callback origin.
 */
export function pageHeaders(formTargets: string[] = []): Headers {
  const formAction = ["'self'", ...formTargets].join(' ');
  return new Headers({
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
}

/** Copy the Set-Cookie headers of `sources` (e.g. the OAuth library's binding cookies) onto `target`, keeping target's security headers. */
export function withCookies(target: Headers, ...sources: Headers[]): Headers {
  for (const source of sources) for (const cookie of source.getSetCookie()) target.append('Set-Cookie', cookie);
  return target;
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f5f5f4;color:#1c1917;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border:1px solid #e7e5e4;border-radius:12px;padding:2rem;max-width:26rem;width:100%;box-shadow:0 1px 3px #0001}
h1{font-size:1.25rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #a8a29e;border-radius:6px;font:inherit}
.buttons{display:flex;gap:.5rem;margin-top:1.25rem}button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #1c1917;background:#1c1917;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1c1917}.error{background:#fef2f2;border:1px solid #fecaca;padding:.5rem .75rem;border-radius:6px}
.client{background:#fafaf9;border:1px solid #e7e5e4;padding:.5rem .75rem;border-radius:6px}.client p{margin:.25rem 0}.domain{font-size:1.125rem}small{color:#57534e}
.providers{display:flex;flex-direction:column;gap:.5rem;margin-top:.75rem}button.provider{background:#fff;color:#1c1917;width:100%}
.or{text-align:center;margin:1rem 0 0}.warn{color:#9a3412}button.link{background:none;border:none;color:#1d4ed8;padding:0;text-decoration:underline}
</style></head><body><main>${body}</main></body></html>`;
}
