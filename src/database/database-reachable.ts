import { Client } from 'pg';

/** The database named by DATABASE_URL could not be used at start; the message is the one line to print. */
export class DatabaseStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseStartError';
  }
}

/** Server answers that no retry can change: an unknown database, a refused login. */
const PERMANENT_SERVER_CODES = new Set(['3D000', '28P01', '28000', '42501']);

const ATTEMPT_TIMEOUT_MS = 3_000;
const RETRY_DELAY_MS = 1_000;

/**
 * Connects once to DATABASE_URL before the application is built, so an unreachable or refusing database
 * stops the start with one line naming the variable and the reason, instead of the ORM's retries and stack
 * traces. A server that is not up yet (refused, timed out) is retried until `budgetMs` has passed; an
 * answer that no retry can change (unknown database, bad credentials) stops at once.
 */
export async function assertDatabaseReachable(url: string, budgetMs = 6_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: ATTEMPT_TIMEOUT_MS });
    // A connection dropped after the failed attempt must not surface as an unhandled 'error' event.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      const code = (error as { code?: string }).code ?? '';
      if (PERMANENT_SERVER_CODES.has(code) || Date.now() + RETRY_DELAY_MS + ATTEMPT_TIMEOUT_MS > deadline) {
        throw new DatabaseStartError(
          `DATABASE_URL: cannot use the database at ${withoutPassword(url)}: ${reasonOf(error)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
  }
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is PostgreSQL running and listening there?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ECONNRESET: 'connection reset',
};

function reasonOf(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const reason = (code && NETWORK_REASONS[code]) || message || String(error);
  return (/timeout/i.test(reason) ? `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s` : reason).split(
    '\n',
  )[0];
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
