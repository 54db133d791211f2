/**
 * Tool input schemas built once per process instead of on every request. The Worker builds a new
 * MCP server for each 2026-07-28 request (the SDK keeps requests apart that way), and building the
 * zod schemas of every tool was about a quarter of a tool call's CPU. A schema depends only on
 * constants and on the values named in its key, so one built earlier is the same schema.
 */
const built = new Map<string, unknown>();
/** Keys are tool names and a few settings values: far fewer than this in any process. */
const MAX_SCHEMAS = 512;

export function schemaOnce<S>(key: string, build: () => S): S {
  if (built.has(key)) {
    // The key names the one place that builds this schema (and the values it depends on), so what is
    // stored under it is that build's result.
    return built.get(key) as S;
  }
  const schema = build();
  if (built.size >= MAX_SCHEMAS) built.clear();
  built.set(key, schema);
  return schema;
}
