/**
 * POSIX shell quoting. Every word that goes into a remote shell passes through here: single
 * quotes make everything literal except the single quote itself, which is closed, escaped and
 * reopened. The result is safe for sh, bash, dash, ash, ksh and zsh.
 */
export function quoteShellWord(word: string): string {
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte');
  return `'${word.replaceAll("'", "'\\''")}'`;
}
