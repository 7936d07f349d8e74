// `npm run openapi [-- <file>]`: writes the OpenAPI document the built service serves at /docs-json to
// <file> (default client/openapi.json), for the client's generated types and for the lint. The service
// in dist/ (`npm run build` first) runs in this process on a throwaway embedded database and a free
// loopback port, so the file is exactly what /docs-json answers. The document names no port, path or
// time of this run, so the file changes only when the API does.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const target = resolve(process.argv[2] ?? join(root, 'client', 'openapi.json'));
const require = createRequire(import.meta.url);

let built;
try {
  built = {
    ...require(join(root, 'dist/src/app.factory.js')),
    ...require(join(root, 'dist/src/config/load-config.js')),
  };
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND') throw error;
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(1);
}

const dataDir = mkdtempSync(join(tmpdir(), 'auth-openapi-'));
// Only what this run needs, never the caller's .env or DATABASE_URL: the defaults name the cookies
// `sid` and `rt`, as a development service does.
const config = built.loadConfig(
  { NODE_ENV: 'development', DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent' },
  false,
);
const app = await built.createApp(config);
try {
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address();
  const response = await fetch(`http://127.0.0.1:${port}/docs-json`);
  if (!response.ok) throw new Error(`GET /docs-json answered ${response.status}`);
  const document = await response.json();
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
} finally {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
}
