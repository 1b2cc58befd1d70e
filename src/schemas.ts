/**
 * Config schema pieces that plugins with backends share (zod): a URL that must be http or https,
 * and a list of backends in which every name is taken once.
 */
import { z } from 'zod';

/** An `http://` or `https://` URL; any other scheme (`ftp:`, `file:`) is a config error. */
export const httpUrl = z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' });

/**
 * A `superRefine` for a list of named items: a second item of the same name is a mistake, not a
 * spare, and is reported at its own path.
 *
 * @example
 * backends: z.array(backend).min(1).superRefine(uniqueNames)
 */
export function uniqueNames(list: readonly { name: string }[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  list.forEach(({ name }, index) => {
    const first = seen.get(name);
    if (first === undefined) seen.set(name, index);
    else
      ctx.addIssue({
        code: 'custom',
        path: [index, 'name'],
        message: `"${name}" is taken by backends[${first}]`,
      });
  });
}
