// Access token verification throughput in one process: the verifier the bearer guard calls, without its
// per-token cache, so every call checks a signature. Not part of `npm test`: figures belong in a report.
//
//   npm run build && node bench/jws-verify.mjs [--seconds 3] [--concurrency 1,32] [--dist dist]
//
// --dist points at another build, e.g. a copy of dist made at an earlier commit, to compare the two.
//
// Tokens are minted with node:crypto here, not with the service's signer, so the same script measures any
// build whose verifyAccessToken(token, findKey, settings, nowSeconds) returns a result or a promise of one.
import { createHmac, createPrivateKey, randomUUID, sign } from 'node:crypto';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1,32' },
    algorithms: { type: 'string', default: 'ES256,EdDSA,RS256,HS256' },
    dist: { type: 'string', default: resolve(import.meta.dirname, '../dist') },
  },
});
const require = createRequire(import.meta.url);
const dist = resolve(args.dist, 'src/token');
const { verifyAccessToken } = require(`${dist}/access-token-verifier.js`);
const { generateKeyMaterial, signingKeyFrom } = require(`${dist}/key-material.js`);

const settings = { issuer: 'https://auth.bench.example', audience: 'api', leewaySeconds: 5 };
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

function mint(algorithm, material, kid) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: settings.issuer,
    aud: settings.audience,
    sub: randomUUID(),
    role: 'user',
    sid: randomUUID(),
    jti: randomUUID(),
    iat: now,
    exp: now + 900,
  };
  const input = `${b64({ alg: algorithm, typ: 'at+jwt', kid })}.${b64(claims)}`;
  const data = Buffer.from(input);
  const signature =
    algorithm === 'HS256'
      ? createHmac('sha256', Buffer.from(material)).update(data).digest()
      : sign(algorithm === 'EdDSA' ? null : 'sha256', data, {
          key: createPrivateKey(material),
          dsaEncoding: 'ieee-p1363',
        });
  return `${input}.${signature.toString('base64url')}`;
}

async function measure(algorithm, concurrency) {
  const material = generateKeyMaterial(algorithm);
  const key = await signingKeyFrom(algorithm, material);
  const token = mint(algorithm, material, key.kid);
  const options = { ...settings, algorithm };
  const findKey = (kid) => (kid === key.kid ? key : undefined);
  const verifyOnce = async () => {
    const result = await verifyAccessToken(token, findKey, options, Math.floor(Date.now() / 1000));
    if (!result.ok) throw new Error(`${algorithm}: the bench token did not verify (${result.code})`);
  };
  for (let i = 0; i < 200; i += 1) await verifyOnce();
  const deadline = performance.now() + Number(args.seconds) * 1000;
  let count = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      await verifyOnce();
      count += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Math.round(count / ((performance.now() - started) / 1000));
}

console.log(`node ${process.version}, ${args.seconds} s per figure, verifications per second`);
for (const algorithm of args.algorithms.split(',')) {
  for (const concurrency of args.concurrency.split(',').map(Number)) {
    console.log(
      `${algorithm.padEnd(6)} concurrency ${String(concurrency).padStart(2)}: ${await measure(algorithm, concurrency)}`,
    );
  }
}
