// `npm run dev`: compile, then recompile on every change (tsc --watch) and restart the service whenever
// its compiled output changes (node --watch). Works on Node 20 without the Nest CLI. Logs are readable
// lines in a terminal (LOG_PRETTY, see docs/configuration.md).
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const tsc = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'];

rmSync('dist', { recursive: true, force: true });
if (spawnSync(process.execPath, tsc, { stdio: 'inherit' }).status !== 0) process.exit(1);
if (spawnSync(process.execPath, ['scripts/copy-assets.mjs'], { stdio: 'inherit' }).status !== 0)
  process.exit(1);

const children = [
  spawn(process.execPath, [...tsc, '--watch', '--preserveWatchOutput'], { stdio: 'inherit' }),
  spawn(process.execPath, ['--watch', '--no-warnings=ExperimentalWarning', 'dist/src/main.js'], {
    stdio: 'inherit',
  }),
];
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
  });
}
for (const child of children) child.on('exit', (code) => process.exit(code ?? 0));
