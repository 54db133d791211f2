/**
 * The policy section (/admin/policy): the stored document in an editor, saved through the same
 * validation as the API; exported as policy.json and imported from such a file. A rejected
 * document changes nothing, and the page keeps what was submitted so it can be fixed.
 */
import { escapeHtml } from '../../auth/html.ts';
import { readPolicy, replacePolicy } from '../admin-actions.ts';
import { download, field, htmlResponse, seeOther, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, csrfField, errorBox, noticeBox } from './layout.ts';

const POLICY_PATH = '/admin/policy';
const EXPORT_PATH = '/admin/policy/export';
const IMPORT_PATH = '/admin/policy/import';
/** The same bound the API puts on a policy document. */
const MAX_POLICY_BYTES = 256 * 1024;

const NOTICES = new Map([
  ['saved', 'Saved the policy. It applies from the next tool call.'],
  ['imported', 'Imported the policy file. It applies from the next tool call.'],
]);

function policyText(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

async function policyPage(context: AdminContext, status: number, state: { notice?: string; error?: string; text?: string }): Promise<Response> {
  const stored = await readPolicy(context.env);
  const text = state.text ?? policyText(stored.policy);
  const body = `<h1>Policy</h1>
<p><small>Revision ${stored.revision}: every save counts one.</small></p>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}
<section class="card"><h2>Edit</h2>
<form method="post" action="${POLICY_PATH}">${csrfField(context.csrf)}
<label for="policy">Policy document (JSON)</label>
<textarea id="policy" name="policy" spellcheck="false" autocapitalize="off">${escapeHtml(text)}</textarea>
<p class="actions"><button type="submit">Save policy</button><a class="button secondary" href="${EXPORT_PATH}" download="policy.json">Export policy.json</a></p>
</form>
<details><summary>How a policy reads</summary>
<p><small>Deny by default. Each grant gives (<code>"effect": "allow"</code>, the default) or takes away (<code>"deny"</code>) a role on some hosts for some people.
<code>subjects</code>: <code>"user:NAME"</code>, <code>"group:NAME"</code> or <code>"*"</code> (everyone signed in).
<code>role</code>: <code>viewer</code> (list, read, download), <code>operator</code> (also run commands, write, upload), <code>admin</code> (on <code>"*"</code>, also this admin page).
<code>hosts</code>: <code>"*"</code>, a host name, a label <code>"env=prod"</code>, or one relay: <code>"relay=site-a"</code>, <code>"site-a/web"</code>. A deny of a role removes it and every role above it. Deny beats allow.</small></p>
<pre class="mono">{ "version": 1, "grants": [
  { "subjects": ["group:ops"], "role": "operator", "hosts": ["*"] },
  { "effect": "deny", "subjects": ["group:contractors"], "role": "operator", "hosts": ["env=prod"] }
] }</pre></details></section>
<section class="card"><h2>Import</h2>
<form method="post" action="${IMPORT_PATH}" enctype="multipart/form-data" class="row">${csrfField(context.csrf)}
<div><label for="policy-file">Policy file (policy.json)</label><input id="policy-file" name="file" type="file" accept=".json,application/json" required></div>
<div><button type="submit">Import</button></div></form>
<p><small>The file replaces the whole policy, after the same checks as Save; a file with a mistake changes nothing.</small></p></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    status,
    adminLayout('Policy', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: POLICY_PATH }),
  );
}

/** Check and store `text`; on any problem, show it again with the reason. */
async function save(context: AdminContext, text: string, how: 'saved' | 'imported'): Promise<Response> {
  if (new TextEncoder().encode(text).byteLength > MAX_POLICY_BYTES) {
    return policyPage(context, 413, {
      error: `The policy was not changed: the document is over ${MAX_POLICY_BYTES} bytes.`,
      text: text.slice(0, MAX_POLICY_BYTES),
    });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof SyntaxError ? error.message : String(error);
    return policyPage(context, 400, { error: `The policy was not changed: the document is not valid JSON (${reason}).`, text });
  }
  const saved = await replacePolicy(context.env, context.admin, document);
  if (!saved.ok) return policyPage(context, 400, { error: saved.message, text });
  return seeOther(context.url, `${POLICY_PATH}?done=${how}`);
}

async function importFile(context: AdminContext): Promise<Response> {
  const file = context.form?.get('file');
  if (!(file instanceof File) || file.size === 0)
    return policyPage(context, 400, { error: 'The policy was not changed: choose a policy file (JSON) to import.' });
  if (file.size > MAX_POLICY_BYTES) return policyPage(context, 413, { error: `The policy was not changed: the file is over ${MAX_POLICY_BYTES} bytes.` });
  return save(context, await file.text(), 'imported');
}

export const policySection: AdminSection = async (context) => {
  const { pathname } = context.url;
  const method = context.request.method;
  if (pathname === POLICY_PATH && method === 'GET') {
    const notice = NOTICES.get(context.url.searchParams.get('done') ?? '');
    return policyPage(context, 200, notice ? { notice } : {});
  }
  if (pathname === POLICY_PATH && method === 'POST') return save(context, field(context.form, 'policy') ?? '', 'saved');
  if (pathname === IMPORT_PATH && method === 'POST') return importFile(context);
  if (pathname === EXPORT_PATH && method === 'GET')
    return download(policyText((await readPolicy(context.env)).policy), 'application/json; charset=utf-8', 'policy.json');
  return null;
};
