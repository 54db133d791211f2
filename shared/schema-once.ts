/**
 * Tool input schemas built once per process instead of on every request. The Worker builds a new
 * MCP server for each 2026-07-28 request (the SDK keeps requests apart that way), and building the
 * zod schemas of every tool was about a quarter of a tool call's CPU. A schema depends only on
 * constants and on the values named in its key, so one built earlier is the same schema.
 */
import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server';

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

type JsonSchemaOptions = Parameters<StandardSchemaWithJSON['~standard']['jsonSchema']['input']>[0];

const convertsOnce = new WeakSet<object>();

/**
 * The schema, made to convert itself to JSON Schema once: its Standard JSON Schema converter
 * (`~standard.jsonSchema`) is memoized on the schema itself. The SDK converts a tool's schemas on
 * every tools/list, and on every tools/call (input, for its Mcp-Param header check; output, for the
 * result), memoizing per server only; the Worker builds a server per request, so without this every
 * request converted again. Each caller gets its own copy: nothing the SDK does to one answer can
 * reach the next. Schemas built once (schemaOnce, module constants) are the ones this pays off for.
 */
export function jsonSchemaOnce<S extends StandardSchemaWithJSON>(schema: S): S {
  if (convertsOnce.has(schema)) return schema;
  const standard = schema['~standard'];
  const converter = standard.jsonSchema;
  const converted = new Map<string, Record<string, unknown>>();
  const once =
    (io: 'input' | 'output') =>
    (options: JsonSchemaOptions): Record<string, unknown> => {
      const key = `${io} ${JSON.stringify(options)}`;
      let json = converted.get(key);
      if (json === undefined) {
        json = converter[io](options);
        converted.set(key, json);
      }
      return structuredClone(json);
    };
  // An own property shadows zod's prototype getter (zod itself stores it the same way on first read).
  Object.defineProperty(schema, '~standard', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: { ...standard, jsonSchema: { input: once('input'), output: once('output') } },
  });
  convertsOnce.add(schema);
  return schema;
}
