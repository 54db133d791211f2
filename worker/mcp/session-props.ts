import { z } from 'zod';

/** What completeAuthorization() stored with the grant, handed to every /mcp request as ctx.props. */
export const sessionProps = z.object({
  userId: z.string().min(1),
  username: z.string().min(1),
  /** The MCP client the user authorized (its registered name, else its id); for the audit log. */
  client: z.string().max(256).optional(),
});
export type SessionProps = z.infer<typeof sessionProps>;
