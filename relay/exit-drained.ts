/**
 * Leaving the process without cutting its output. On Linux, writes to a pipe are asynchronous in
 * Node: what the pipe buffer (64 KiB) cannot take at once waits in the stream, and process.exit()
 * drops it. So `mcp-remote-exec admin audit --jsonl | less` lost everything past 64 KiB. Every
 * exit of the command goes through here, after stdout and stderr have handed their bytes to the OS.
 */

/** Resolves once everything written to `stream` so far has been flushed, or the stream is gone. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  return new Promise((resolve) => {
    // A reader that went away (EPIPE) ends the wait too: nothing more can be delivered.
    const done = (): void => {
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('error', done);
    stream.once('close', done);
    // The callback of an empty write runs after every earlier write was flushed.
    stream.write('', done);
  });
}

/** Exit with `code` once stdout and stderr are drained. Waits as long as a slow reader needs. */
export async function exitWhenDrained(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}
