/**
 * How risky a write target is. A write is mutating; it is privileged when the target is a system
 * location, a file in a home directory that runs code or grants access, or a place the classifier
 * cannot know (an expanding word, `..`, or a relative path after the directory changed).
 */
import { HARMLESS_WRITE_TARGETS, SENSITIVE_HOME_FILES, SYSTEM_PATHS } from './command-table.ts';
import type { CommandClass } from './command-class.ts';
import type { Arg } from './shell-words.ts';

export interface TargetVerdict {
  class: CommandClass;
  reason: string;
}

/** `cwdKnown`: false once the command changes directory, since relative paths then point anywhere. */
export function writeTarget(target: Arg, cwdKnown: boolean, verb: string): TargetVerdict | null {
  if (target.kind === 'procsub') return null;
  if (target.kind === 'expanding') return { class: 'privileged', reason: `${verb} a path only known when it runs` };
  const path = target.value;
  if (HARMLESS_WRITE_TARGETS.includes(path) || /^\/dev\/fd\/[0-9]+$/.test(path)) return null;
  const shown = path.length > 60 ? `${path.slice(0, 57)}...` : path;
  if (path === '' || path.split('/').includes('..')) return { class: 'privileged', reason: `${verb} ${shown} (leaves its directory)` };
  if (path.startsWith('~')) {
    const slash = path.indexOf('/');
    if ((slash === -1 ? path : path.slice(0, slash)) !== '~') return { class: 'privileged', reason: `${verb} another user's home (${shown})` };
    const rest = slash === -1 ? '' : normalise(path.slice(slash + 1));
    return homeTarget(rest, shown, verb);
  }
  if (path.startsWith('/')) {
    const absolute = `/${normalise(path)}`;
    if (absolute === '/') return { class: 'privileged', reason: `${verb} the root directory` };
    if (HARMLESS_WRITE_TARGETS.includes(absolute)) return null;
    if (SYSTEM_PATHS.some((root) => absolute === root || absolute.startsWith(`${root}/`))) {
      return { class: 'privileged', reason: `${verb} the system path ${shown}` };
    }
    const home = /^\/home\/[^/]+(?:\/(.*))?$/.exec(absolute);
    if (home !== null) return homeTarget(home[1] ?? '', shown, verb);
    return { class: 'mutating', reason: `${verb} ${shown}` };
  }
  if (!cwdKnown) return { class: 'privileged', reason: `${verb} ${shown} after changing directory` };
  // A command over SSH starts in the user's home: a relative path is a home path.
  return homeTarget(normalise(path), shown, verb);
}

function homeTarget(rest: string, shown: string, verb: string): TargetVerdict {
  if (rest === '') return { class: 'privileged', reason: `${verb} a whole home directory` };
  if (SENSITIVE_HOME_FILES.some((name) => rest === name || rest.startsWith(`${name}/`))) {
    return { class: 'privileged', reason: `${verb} ${shown}, a file that runs code or grants access` };
  }
  return { class: 'mutating', reason: `${verb} ${shown}` };
}

/** Drops empty and `.` segments (`//etc/./x` is `/etc/x`); `..` was refused before. */
function normalise(path: string): string {
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}
