import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

/**
 * Who is on the other end, for audit and session listings: IP (per TRUST_PROXY) and user agent; and whether
 * they are still there: `signal` aborts when the connection closes before the response was sent, so work
 * queued for them (a password hash) can be dropped.
 */
export interface ClientInfo {
  ip: string | undefined;
  userAgent: string | undefined;
  signal?: AbortSignal;
}

const departures = new WeakMap<Request, AbortSignal>();

function departureOf(request: Request): AbortSignal | undefined {
  const response = request.res;
  if (!response) return undefined;
  let signal = departures.get(request);
  if (!signal) {
    const controller = new AbortController();
    // Asked for late: the client may have gone already, and 'close' will not come again.
    if (!response.writableFinished && (response.destroyed || request.socket.destroyed)) controller.abort();
    // 'close' also follows a normal end; only a close before the response finished means the client left.
    response.once('close', () => {
      if (!response.writableFinished) controller.abort();
    });
    signal = controller.signal;
    departures.set(request, signal);
  }
  return signal;
}

/**
 * `signal` is made when first read (by the work that can be dropped: a password hash), not for every
 * request that names its client: an AbortController and a listener cost a refresh a few per cent.
 */
export function clientInfoOf(request: Request): ClientInfo {
  const userAgent = request.headers['user-agent'];
  return {
    ip: request.ip,
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : undefined,
    get signal() {
      return departureOf(request);
    },
  };
}

export const Client = createParamDecorator((_data: unknown, context: ExecutionContext): ClientInfo =>
  clientInfoOf(context.switchToHttp().getRequest<Request>()),
);
