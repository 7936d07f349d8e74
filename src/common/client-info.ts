import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

/** Who is on the other end, for audit and session listings: IP (per TRUST_PROXY) and user agent. */
export interface ClientInfo {
  ip: string | undefined;
  userAgent: string | undefined;
}

export function clientInfoOf(request: Request): ClientInfo {
  const userAgent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : undefined };
}

export const Client = createParamDecorator((_data: unknown, context: ExecutionContext): ClientInfo =>
  clientInfoOf(context.switchToHttp().getRequest<Request>()),
);
