import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  ReconnectStrategyError,
  RootNodesUnavailableError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from 'redis';
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
  '57014', // query_canceled: statement_timeout
  '55P03', // lock_not_available: lock_timeout, a lock held by a client that stopped answering
  '25P03', // idle_in_transaction_session_timeout
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08006',
]);

// node-redis leaves `name` as "Error" on its own classes, so they are told apart by class.
const REDIS_ERRORS = [
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  ReconnectStrategyError,
  RootNodesUnavailableError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
];

/** Recognises the ways a lost PostgreSQL or Redis connection surfaces from pg, TypeORM and node-redis. */
export function asBackendUnavailable(error: unknown): BackendUnavailableError | undefined {
  if (error instanceof BackendUnavailableError) return error;
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const driverCode = (error as { driverError?: { code?: unknown } }).driverError?.code;
  if (
    REDIS_ERRORS.some((type) => error instanceof type) ||
    (/redis/i.test(error.message) && /closed|offline|connect|ready/i.test(error.message))
  ) {
    return new BackendUnavailableError('redis', error);
  }
  if (
    (typeof code === 'string' && CONNECTION_CODES.has(code)) ||
    (typeof driverCode === 'string' && CONNECTION_CODES.has(driverCode)) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|Query read timeout/i.test(
      error.message,
    )
  ) {
    return new BackendUnavailableError('database', error);
  }
  return undefined;
}
