/** The relay command's help, apart so that `--help` loads nothing else. */
export const RELAY_USAGE = `Usage: mcp-remote-exec relay [--config FILE] [--url URL] [--env-file FILE]

Connects out to the mcp-remote-exec Worker and runs SSH work for it.
  --config FILE    JSON file listing hosts (default: HOST, SSH_* variables, as the seed)
  --url URL        the Worker's URL (default: RELAY_URL)
  --env-file FILE  read variables from FILE (default: ./.env)
Environment: I_ACCEPT_RISKS=true (required), RELAY_TOKEN or RELAY_TOKEN_FILE (its own token from
"admin relays add NAME", or the deployment token), RELAY_ID (default: the name in its token),
RELAY_SHUTDOWN_GRACE_SECONDS, LOG_LEVEL.`;
