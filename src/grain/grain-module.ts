import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Grain, type GrainClass } from './grain.ts';
import { loadTypeScriptFor } from './typescript-loader.ts';

/**
 * The grain classes a module exports (every exported subclass of Grain with a `static type`):
 * how the silo command, the load test and the compose check find the grains of a module path.
 */
export async function grainClassesOf(modulePath: string): Promise<GrainClass[]> {
  await loadTypeScriptFor(modulePath);
  const exports = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  return Object.values(exports).filter(isGrainClass);
}

function isGrainClass(value: unknown): value is GrainClass {
  return typeof value === 'function' && value.prototype instanceof Grain && typeof (value as { type?: unknown }).type === 'string';
}
