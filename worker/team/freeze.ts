/**
 * Freeze: an admin stops new work at once, for the whole deployment, one user or one relay. The
 * state lives in the TeamDirectory and rides in every Access, so the gate refuses the very next call
 * without asking anyone else. Unfreeze removes the mark; nothing else changes.
 */
import { z } from 'zod';
import { RELAY_NAME_PATTERN } from '../../shared/relay-credential.ts';

/** Who froze it and when (ISO 8601), for the refusal message and the admin page. */
export interface FreezeMark {
  by: string;
  at: string;
}

export interface FreezeState {
  deployment: FreezeMark | null;
  users: Array<FreezeMark & { name: string }>;
  relays: Array<FreezeMark & { name: string }>;
}

/** The user-name rule of team-directory.ts (not imported: that module needs the Workers runtime). */
const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export const NO_FREEZE: FreezeState = { deployment: null, users: [], relays: [] };

export const FREEZE_SCOPES = ['deployment', 'user', 'relay'] as const;
export type FreezeScope = (typeof FREEZE_SCOPES)[number];

/** The freeze and unfreeze API bodies: a scope, a name unless it is the deployment, and (freeze) whether to cancel running jobs. */
export const freezeRequestSchema = z
  .object({
    scope: z.enum(FREEZE_SCOPES, { error: `scope must be one of ${FREEZE_SCOPES.join(', ')}` }),
    name: z.string().max(64).optional(),
    cancelJobs: z.boolean({ error: 'cancelJobs must be true or false' }).default(false),
  })
  .strict()
  .superRefine((body, context) => {
    if (body.scope === 'deployment') {
      if (body.name !== undefined) context.addIssue({ code: 'custom', path: ['name'], message: 'the deployment scope takes no name' });
      return;
    }
    const pattern = body.scope === 'user' ? USERNAME_PATTERN : RELAY_NAME_PATTERN;
    if (body.name === undefined || !pattern.test(body.name))
      context.addIssue({ code: 'custom', path: ['name'], message: `the ${body.scope} scope needs the ${body.scope}'s name` });
  });
export type FreezeRequest = z.infer<typeof freezeRequestSchema>;

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** The state with `scope`/`name` frozen (an existing mark keeps its time) or thawed. */
export function applyFreeze(state: FreezeState, scope: FreezeScope, name: string | undefined, mark: FreezeMark | null): FreezeState {
  if (scope === 'deployment') return { ...state, deployment: mark === null ? null : (state.deployment ?? mark) };
  const key = scope === 'user' ? 'users' : 'relays';
  const label = name ?? '';
  const others = state[key].filter((entry) => !same(entry.name, label));
  const existing = state[key].find((entry) => same(entry.name, label));
  return { ...state, [key]: mark === null ? others : [...others, existing ?? { name: label, ...mark }] };
}

/** Why a call by `username` (through `relay`, once known) is refused, or null when nothing it touches is frozen. */
export function frozenReason(state: FreezeState, username: string, relay?: string): string | null {
  const told = (what: string, mark: FreezeMark): string =>
    `${what} was frozen by an admin (${mark.by}) at ${mark.at}: every new call is refused until an admin unfreezes it. Nothing was sent to the host.`;
  if (state.deployment) return told('This deployment', state.deployment);
  const user = state.users.find((entry) => same(entry.name, username));
  if (user) return told(`Your account "${user.name}"`, user);
  const frozenRelay = relay === undefined ? undefined : state.relays.find((entry) => same(entry.name, relay));
  if (frozenRelay) return told(`Relay "${frozenRelay.name}"`, frozenRelay);
  return null;
}
