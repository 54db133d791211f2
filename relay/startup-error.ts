/** A start that cannot go on (risks not accepted, no host, a host that refuses us): exit 1 with the reason. */
export class StartupError extends Error {
  override name = 'StartupError';
}
