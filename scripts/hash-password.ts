/**
 * Prints the ADMIN_PASSWORD_HASH for a password read from standard input (so it stays out of
 * shell history and the process list):
 *   printf '%s' 'the password' | npm run -s hash-password | npx wrangler secret put ADMIN_PASSWORD_HASH
 */
import { hashPassword } from '../worker/auth/password-hash.ts';

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
const password = Buffer.concat(chunks)
  .toString('utf8')
  .replace(/\r?\n$/, '');
if (password.length < 12) {
  process.stderr.write('Give a password of at least 12 characters on standard input.\n');
  process.exit(2);
}
process.stdout.write(`${await hashPassword(password)}\n`);
