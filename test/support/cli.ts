import { main } from '../../src/cli/main.ts';

/** Runs the `redgrain` command in this process: exit code, stdout lines, stderr lines. */
export async function redgrain(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (t) => out.push(t),
    (t) => err.push(t),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}
