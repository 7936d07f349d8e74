import { BackendUnavailableError } from './app-error';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08006',
]);

const REDIS_ERRORS = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'SocketClosedUnexpectedlyError',
  'ReconnectStrategyError',
]);

/** Recognises the ways a lost PostgreSQL or Redis connection surfaces from pg, TypeORM and node-redis. */
export function asBackendUnavailable(error: unknown): BackendUnavailableError | undefined {
  if (error instanceof BackendUnavailableError) return error;
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const driverCode = (error as { driverError?: { code?: unknown } }).driverError?.code;
  if (
    REDIS_ERRORS.has(error.name) ||
    (/redis/i.test(error.message) && /closed|offline|connect/i.test(error.message))
  ) {
    return new BackendUnavailableError('redis', error);
  }
  if (
    (typeof code === 'string' && CONNECTION_CODES.has(code)) ||
    (typeof driverCode === 'string' && CONNECTION_CODES.has(driverCode)) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended/i.test(
      error.message,
    )
  ) {
    return new BackendUnavailableError('database', error);
  }
  return undefined;
}
