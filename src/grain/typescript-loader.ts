import { InvalidGrainModuleError } from '../errors/errors.ts';

/** Module file names Node cannot import without a TypeScript loader. */
const TYPESCRIPT_MODULE = /\.[cm]?tsx?$/;

let registration: Promise<void> | undefined;

/**
 * Lets this process import a TypeScript grain module (`--grains ./grains.ts`). The compiled
 * package runs under plain Node, so it registers tsx, which an app installs itself, the first
 * time a TypeScript module is asked for: apps that pass compiled grains never load it.
 */
export async function loadTypeScriptFor(modulePath: string): Promise<void> {
  if (!TYPESCRIPT_MODULE.test(modulePath)) return;
  // Running from redgrain's own TypeScript sources: a loader is registered already.
  if (import.meta.url.endsWith('.ts')) return;
  registration ??= import('tsx/esm/api').then(
    ({ register }) => {
      register();
    },
    (error: unknown) => {
      registration = undefined;
      if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      // Node versions that strip types themselves can still load plain TypeScript.
      if ((process.features as { typescript?: unknown }).typescript) return;
      throw new InvalidGrainModuleError(
        modulePath,
        'it is TypeScript and tsx is not installed: `npm install --save-dev tsx`, or pass the compiled JavaScript module',
      );
    },
  );
  await registration;
}
