/**
 * A whole number with thousands separators, as `toLocaleString('en-US')` writes it (1,048,576), for
 * the messages and tool descriptions that state limits and sizes. Written out because the runtime's
 * locale formatting is slow in workerd (a tenth of a millisecond and more a call, measured with
 * bench/cpu-profile.ts), and tool descriptions are built for every request.
 */
export function formatCount(value: number): string {
  if (!Number.isSafeInteger(value)) return value.toLocaleString('en-US');
  const digits = String(Math.abs(value));
  let grouped = '';
  for (let end = digits.length; end > 0; end -= 3) grouped = `${digits.slice(Math.max(0, end - 3), end)}${grouped === '' ? '' : ','}${grouped}`;
  return value < 0 ? `-${grouped}` : grouped;
}
