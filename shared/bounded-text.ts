/**
 * Bounding text before it goes into a frame. A message that repeats what the caller sent (a
 * 4096-character path, a 10,000-character command) must still fit the frame's schema, or the
 * whole answer is refused on receipt and the request it ends is lost. Cutting is visible, so a
 * reader knows the text goes on.
 */

/** Longest error or status message a frame carries (protocol.ts uses it in its schemas). */
export const MAX_MESSAGE_CHARS = 4096;

/**
 * `text` if it has at most `max` characters; otherwise its start, then "[… N more characters]",
 * the whole at most `max` characters. Never splits a surrogate pair.
 */
export function boundText(text: string, max: number = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  // The marker's own length depends on N; the widest N (text.length) bounds it.
  const room = Math.max(0, max - marker(text.length).length);
  let cut = room;
  const last = text.charCodeAt(cut - 1);
  if (cut > 0 && last >= 0xd800 && last <= 0xdbff) cut -= 1;
  const kept = text.slice(0, cut) + marker(text.length - cut);
  return kept.length <= max ? kept : kept.slice(0, max);
}

function marker(omitted: number): string {
  return `[… ${omitted} more characters]`;
}
