/** Settings that cannot work (a bad value, a missing file): exit 2 with what to change. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
