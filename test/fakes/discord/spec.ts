/** Checks recorded REST requests against test/fakes/specs/discord-openapi.json, a copy of the official OpenAPI spec. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { DiscordRecorded } from './server.ts';

interface Operation {
  readonly requestBody?: { readonly content?: Record<string, { readonly schema?: unknown }> };
}

const spec = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../specs/discord-openapi.json'), 'utf8'),
) as {
  paths: Record<string, Record<string, Operation>>;
};
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(spec, 'discord');

/** Path templates with their matchers, literal segments (`@original`) before parameters. */
const templates = Object.keys(spec.paths)
  .map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
    parameters: (template.match(/\{/g) ?? []).length,
  }))
  .sort((a, b) => a.parameters - b.parameters);

const pointer = (...parts: string[]) =>
  parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

/** Problems with the recorded requests: unknown path or method, or a body that breaks the schema. */
export function checkDiscordRequests(requests: readonly DiscordRecorded[]): string[] {
  const problems: string[] = [];
  for (const request of requests) {
    const found = templates.find((t) => t.pattern.test(request.path));
    const method = request.method.toLowerCase();
    const operation = found && spec.paths[found.template]?.[method];
    if (!found || !operation) {
      problems.push(`${request.method} ${request.path}: not in the spec`);
      continue;
    }
    if (request.body === undefined) continue;
    const content = operation.requestBody?.content ?? {};
    // Multipart carries the JSON in payload_json: check it against the JSON body's schema.
    const type = 'application/json' in content ? 'application/json' : Object.keys(content)[0];
    if (!type) {
      problems.push(`${request.method} ${found.template}: the spec takes no body`);
      continue;
    }
    const validate = ajv.getSchema(
      `discord#/${pointer('paths', found.template, method, 'requestBody', 'content', type, 'schema')}`,
    );
    if (!validate) {
      problems.push(`${request.method} ${found.template}: no schema`);
      continue;
    }
    if (!validate(request.body)) {
      problems.push(
        `${request.method} ${found.template}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`,
      );
    }
  }
  return problems;
}
