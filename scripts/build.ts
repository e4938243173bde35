/**
 * `npm run build` (and `prepack`): compiles src/ into dist/ (JavaScript, declarations and source
 * maps, tsconfig.build.json) and copies the Lua scripts and the dashboard's page next to the
 * modules that read them.
 * dist/ is rebuilt from nothing, so a file removed from src/ never lingers in the package.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
for (const file of readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })) {
  // Lua scripts, and the dashboard's page (served as it is: no build step on the user's side).
  if (file.endsWith('.lua') || (file.startsWith(join('dashboard', 'public')) && /\.(html|js|css)$/.test(file))) {
    cpSync(join(root, 'src', file), join(dist, file));
  }
}
chmodSync(join(dist, 'cli', 'bin.js'), 0o755);
