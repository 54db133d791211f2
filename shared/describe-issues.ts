import type { z } from 'zod';

/** A zod failure as one readable line: "grants.0.role: role must be one of …; …". */
export function describeIssues(error: z.ZodError, whole: string): string {
  return error.issues.map((issue) => `${issue.path.join('.') || whole}: ${issue.message}`).join('; ');
}
