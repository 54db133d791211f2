/** The seed refused to run until the operator accepted the risks; so do we, in every mode. */
export const RISK_NOTICE =
  'mcp-remote-exec lets an AI assistant run commands on your servers. Read the security notes in the README, ' +
  'then set I_ACCEPT_RISKS=true (in the environment or .env) to confirm you accept the risks.';

export function risksAccepted(env: NodeJS.ProcessEnv): boolean {
  return env.I_ACCEPT_RISKS?.trim().toLowerCase() === 'true';
}
