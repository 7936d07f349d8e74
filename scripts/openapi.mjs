// `npm run openapi`: boots the built service on a free loopback port with throwaway embedded storage and
// writes the OpenAPI document it serves at /docs-json to client/openapi.json, the source of the client's
// generated types. Run `npm run build` first.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), 'auth-openapi-'));
const env = {
  ...process.env,
  NODE_ENV: 'development',
  HOST: '127.0.0.1',
  PORT: String(port),
  DATA_DIR: dataDir,
};
for (const name of ['DATABASE_URL', 'REDIS_URL', 'COOKIE_SECURE', 'ADMIN_EMAIL', 'ADMIN_PASSWORD'])
  delete env[name];
env.LOG_LEVEL = 'warn';
const service = spawn(process.execPath, ['dist/src/main.js'], {
  env,
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise((resolve) => service.on('exit', resolve));

try {
  const deadline = Date.now() + 60_000;
  let document;
  while (!document) {
    if (service.exitCode !== null) throw new Error(`the service exited with ${service.exitCode}`);
    if (Date.now() > deadline) throw new Error('the service did not serve /docs-json within 60 s');
    try {
      const response = await fetch(`http://127.0.0.1:${port}/docs-json`);
      if (response.ok) document = await response.json();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  writeFileSync('client/openapi.json', JSON.stringify(document, null, 2) + '\n');
  console.log('client/openapi.json written');
} finally {
  service.kill('SIGTERM');
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
}
