import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * The container image and the compose file, read as an operator's tooling reads them (there is no Docker
 * engine here; `npm run lint:compose` lints the compose file in CI).
 */
const ROOT = join(__dirname, '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

describe('deployment files', () => {
  it('builds and runs on a maintained Node LTS line (22 or later, even-numbered)', () => {
    const versions = [...dockerfile.matchAll(/^FROM node:(\d+)[-.]/gm)].map((match) => Number(match[1]));
    expect(versions).toHaveLength(2);
    for (const version of versions) {
      expect(version).toBeGreaterThanOrEqual(22);
      expect(version % 2).toBe(0);
    }
  });

  it('runs as the node user with a DATA_DIR that user owns, for the embedded database', () => {
    expect(dockerfile).toMatch(/^ENV .*\bDATA_DIR=\/data\b/m);
    expect(dockerfile).toMatch(/^RUN mkdir -p \/data && chown node:node \/data$/m);
    const user = dockerfile.lastIndexOf('\nUSER node');
    expect(user).toBeGreaterThan(dockerfile.indexOf('chown node:node /data'));
  });

  it('asks liveness, not readiness, in the image and in compose, so an outage kills no healthy replica', () => {
    const healthcheck = dockerfile.split('\n').find((line) => line.startsWith('HEALTHCHECK'));
    expect(healthcheck).toContain('/health/live');
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { healthcheck?: { test: string[] } }>;
    };
    const test = compose.services.auth.healthcheck!.test.join(' ');
    expect(test).toContain('/health/live');
    expect(test).not.toContain('/health/ready');
  });
});
