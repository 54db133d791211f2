import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonSchemaOnce } from '../../../shared/schema-once.ts';

const options = { target: 'draft-2020-12' } as const;

describe('jsonSchemaOnce', () => {
  it('converts a schema to JSON Schema once per direction and options, handing out copies', () => {
    const schema = z.object({ command: z.string().max(10), timeout: z.number().int().optional() });
    let conversions = 0;
    const original = schema['~standard'].jsonSchema;
    Object.defineProperty(schema, '~standard', {
      configurable: true,
      value: {
        ...schema['~standard'],
        jsonSchema: {
          input: (given: typeof options) => ((conversions += 1), original.input(given)),
          output: (given: typeof options) => ((conversions += 1), original.output(given)),
        },
      },
    });
    const once = jsonSchemaOnce(schema);
    const first = once['~standard'].jsonSchema.input(options);
    const second = once['~standard'].jsonSchema.input(options);
    expect(second).toEqual(first);
    expect(first).toEqual(original.input(options));
    expect(conversions).toBe(1);
    // A copy each time: what one caller does to its answer never reaches the next.
    (first as { properties: Record<string, unknown> }).properties.injected = true;
    expect(once['~standard'].jsonSchema.input(options)).not.toHaveProperty('properties.injected');
    once['~standard'].jsonSchema.output(options);
    once['~standard'].jsonSchema.output(options);
    once['~standard'].jsonSchema.input({ target: 'draft-07' });
    expect(conversions).toBe(3);
  });

  it('leaves validation as it was, and is idempotent', () => {
    const schema = jsonSchemaOnce(jsonSchemaOnce(z.object({ n: z.number().max(3) })));
    expect(schema.safeParse({ n: 2 }).success).toBe(true);
    expect(schema.safeParse({ n: 4 }).success).toBe(false);
    const validated = schema['~standard'].validate({ n: 'x' });
    expect(validated).toHaveProperty('issues');
  });
});
