// Serves the example app with nothing but node:http: the page and its modules, the client's build under
// /client/ and openapi-fetch under /vendor/openapi-fetch/ (the paths index.html's import map names).
//   node examples/spa/serve.mjs            http://127.0.0.1:5173 (PORT and HOST change it; PORT=0 picks one)
// Start the service with CORS_ORIGINS=http://127.0.0.1:5173 so that this origin may call it.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// Resolved from the client package, which depends on it, wherever npm placed it.
const openapiFetch = dirname(
  createRequire(join(root, 'client', 'package.json')).resolve('openapi-fetch/package.json'),
);

const mounts = [
  ['/client/', join(root, 'client', 'dist')],
  ['/vendor/openapi-fetch/', join(openapiFetch, 'dist')],
  ['/', here],
];

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

/** The file a URL path names under its mount, or undefined when it names none (or climbs out of it). */
function fileFor(pathname) {
  const [prefix, directory] = mounts.find(([prefix]) => pathname.startsWith(prefix));
  const relative = pathname === '/' ? 'index.html' : pathname.slice(prefix.length);
  const file = normalize(join(directory, relative));
  if (!file.startsWith(directory + sep)) return undefined;
  return existsSync(file) && statSync(file).isFile() ? file : undefined;
}

const server = createServer((req, res) => {
  const file = fileFor(new URL(req.url ?? '/', 'http://spa').pathname);
  if (req.method !== 'GET' || !file) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, {
    'Content-Type': types[extname(file)] ?? 'application/octet-stream',
    'Cache-Control': 'no-store',
  });
  createReadStream(file).pipe(res);
});

server.listen(Number(process.env.PORT ?? 5173), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  // The tests read this line to learn the port.
  console.log(`example app on http://${address}:${port}/`);
  if (!existsSync(join(root, 'client', 'dist', 'index.js'))) {
    console.log('client/dist/index.js is missing: build the client first (npm run build)');
  }
});
