import { z } from 'zod';

/** What completeAuthorization() stored with the grant, handed to every /mcp request as ctx.props. */
export const sessionProps = z.object({ userId: z.string().min(1), username: z.string().min(1) });
export type SessionProps = z.infer<typeof sessionProps>;
