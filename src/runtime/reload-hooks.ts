/**
 * Module resolution hooks for reloading a plugin's code (see `loadPlugin`'s `version`). ES modules
 * cannot be unloaded, so a new version is imported under a new URL: the plugin's entry gets the
 * query `?chorus-reload=N&chorus-scope=<folder>`, and this hook gives the same query to every file
 * that entry imports from inside its folder (node_modules excepted). Everything else (Chorus
 * itself, packages, files outside the folder) resolves as usual and stays one shared instance.
 */
import type { ResolveHook } from 'node:module';

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context);
  const parent = context.parentURL;
  if (!parent?.includes('chorus-reload=') || !resolved.url.startsWith('file:')) return resolved;
  const from = new URL(parent);
  const scope = from.searchParams.get('chorus-scope');
  const url = new URL(resolved.url);
  if (!scope || url.search || !url.href.startsWith(scope) || url.pathname.includes('/node_modules/')) {
    return resolved;
  }
  url.search = from.search;
  return { ...resolved, url: url.href };
};
