import { failure, success, type Outcome } from './errors.ts';

/**
 * Pick the host a call is about. A name must match exactly; no name is fine only when there is
 * exactly one host, so a call can never land on a host the caller did not mean.
 */
export function selectHost(available: readonly string[], requested: string | undefined): Outcome<string> {
  if (requested !== undefined) {
    if (available.includes(requested)) return success(requested);
    const known = available.length > 0 ? `Known hosts: ${available.join(', ')}.` : 'No hosts are configured.';
    return failure('host_not_configured', `Host "${requested}" is not configured. ${known}`);
  }
  if (available.length === 1 && available[0] !== undefined) return success(available[0]);
  if (available.length === 0) {
    return failure(
      'host_not_configured',
      'No hosts are configured on the relay. Add one (HOST=… in .env, or a hosts entry in the relay config file) and restart the relay.',
    );
  }
  return failure('host_ambiguous', `${available.length} hosts are configured (${available.join(', ')}); say which one with the host argument.`);
}
