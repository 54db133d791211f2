/**
 * Makes a relay token. The token goes to the relay (RELAY_TOKEN or RELAY_TOKEN_FILE); only its
 * SHA-256 goes to the Worker (RELAY_TOKEN_HASH), so the Worker holds nothing that could
 * impersonate the relay.
 */
import { sha256Hex } from '../worker/auth/password-hash.ts';
import { newSecret } from './local-secrets.ts';

const token = newSecret(32);
process.stdout.write(`RELAY_TOKEN=${token}\nRELAY_TOKEN_HASH=${await sha256Hex(token)}\n`);
