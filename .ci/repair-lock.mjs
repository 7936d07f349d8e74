// Run after `npm install` changes the lock on this machine: its registry proxy serves only this platform's
// optional binaries (@swc/core-*, @unrs/resolver-binding-*), so npm writes a lock without the others and
// `npm ci` then refuses it as out of sync. This adds the missing entries (name, version, os/cpu) so the lock
// is complete; npm skips them here by platform and fetches them by version elsewhere.
import { readFileSync, writeFileSync } from 'node:fs';
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const platform = (name) => {
  const p = name.split('/').pop().replace(/^(core|resolver-binding)-/, '');
  const [os, cpu, abi] = p.split('-');
  const entry = { os: [os === 'openharmony' ? 'openharmony' : os], cpu: [cpu === 'arm' ? 'arm' : cpu] };
  if (abi && /gnu/.test(abi)) entry.libc = ['glibc'];
  if (abi && /musl/.test(abi)) entry.libc = ['musl'];
  return entry;
};
let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key] || !/^\d/.test(version)) continue;
    lock.packages[key] = { version, dev: pkg.dev, optional: true, ...platform(dep) };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added}`);
