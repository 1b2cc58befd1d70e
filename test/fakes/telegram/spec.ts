/** Checks recorded Bot API requests against test/fakes/specs/telegram-api.json, a copy of the official spec. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Recorded } from './server.ts';

interface Field {
  readonly name: string;
  readonly types: readonly string[];
  readonly required: boolean;
}
interface Spec {
  readonly methods: Record<string, { readonly fields?: readonly Field[] }>;
  readonly types: Record<string, { readonly fields?: readonly Field[] }>;
}

const spec = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../specs/telegram-api.json'), 'utf8'),
) as Spec;

function checkObject(where: string, value: unknown, typeNames: readonly string[], problems: string[]): void {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return;
  // The value matches one of the named types: check against the first whose required fields it has.
  const candidates = typeNames.map((name) => spec.types[name.replace(/^Array of /, '')]).filter(Boolean);
  if (candidates.length === 0) return;
  const fitting = candidates.find((type) =>
    (type!.fields ?? []).filter((f) => f.required).every((f) => f.name in value),
  );
  if (!fitting) {
    problems.push(`${where}: missing required fields of ${typeNames.join(' | ')}`);
    return;
  }
  const known = new Map((fitting.fields ?? []).map((f) => [f.name, f]));
  for (const [key, inner] of Object.entries(value)) {
    const field = known.get(key);
    if (!field) problems.push(`${where}.${key}: not a field of ${typeNames.join(' | ')}`);
    else checkValue(`${where}.${key}`, inner, field.types, problems);
  }
}

function checkValue(where: string, value: unknown, types: readonly string[], problems: string[]): void {
  if (Array.isArray(value)) {
    const inner = types.filter((t) => t.startsWith('Array of ')).map((t) => t.slice('Array of '.length));
    for (const [index, item] of value.entries()) checkValue(`${where}[${index}]`, item, inner, problems);
    return;
  }
  checkObject(where, value, types, problems);
}

/** Problems with the recorded requests: unknown methods, unknown parameters, missing required ones. */
export function checkTelegramRequests(requests: readonly Recorded[]): string[] {
  const problems: string[] = [];
  for (const { method, params } of requests) {
    const definition = spec.methods[method];
    if (!definition) {
      problems.push(`${method}: not a Bot API method`);
      continue;
    }
    const fields = new Map((definition.fields ?? []).map((f) => [f.name, f]));
    for (const field of fields.values()) {
      if (field.required && !(field.name in params))
        problems.push(`${method}: required ${field.name} missing`);
    }
    for (const [key, value] of Object.entries(params)) {
      const field = fields.get(key);
      if (!field) {
        // A multipart upload names its file parts freely and refers to them with attach://.
        if (
          /^[\w-]+$/.test(key) &&
          typeof value !== 'object' &&
          JSON.stringify(params).includes(`attach://${key}`)
        )
          continue;
        problems.push(`${method}.${key}: not a parameter of ${method}`);
      } else checkValue(`${method}.${key}`, value, field.types, problems);
    }
  }
  return problems;
}
