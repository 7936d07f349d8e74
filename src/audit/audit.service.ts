import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import type { ClientInfo } from '../common/client-info';
import { AuditEvent, AuditType } from './audit-event.entity';

export interface AuditQuery {
  userId?: string;
  type?: AuditType;
  page: number;
  limit: number;
}

@Injectable()
export class AuditService {
  constructor(@InjectRepository(AuditEvent) private readonly events: Repository<AuditEvent>) {}

  /** Records an event; pass the transaction's manager when the event belongs to a write. */
  async record(
    type: AuditType,
    userId: string | null,
    client: ClientInfo | undefined,
    detail: Record<string, unknown> = {},
    manager?: EntityManager,
  ): Promise<void> {
    const repository = manager ? manager.getRepository(AuditEvent) : this.events;
    await repository.insert({
      type,
      userId,
      ip: client?.ip?.slice(0, 64) ?? null,
      userAgent: client?.userAgent?.slice(0, 512) ?? null,
      detail: detail as AuditEvent['detail'] & object,
    });
  }

  /**
   * Erases the IP and user agent of the entries of users deleted at least `retentionSeconds` ago; the
   * entries themselves stay, under the user id.
   */
  async eraseClientDataOfDeletedUsers(retentionSeconds: number): Promise<void> {
    await this.events.query(
      `UPDATE audit_events SET ip = NULL, user_agent = NULL
       WHERE (ip IS NOT NULL OR user_agent IS NOT NULL)
         AND user_id IN (
           SELECT user_id FROM audit_events
           WHERE type = 'user.deleted' AND at <= now() - make_interval(secs => $1)
         )`,
      [retentionSeconds],
    );
  }

  async list(query: AuditQuery): Promise<{ items: AuditEvent[]; total: number }> {
    const [items, total] = await this.events.findAndCount({
      where: {
        ...(query.userId ? { userId: query.userId } : {}),
        ...(query.type ? { type: query.type } : {}),
      },
      order: { at: 'DESC', id: 'ASC' },
      skip: (query.page - 1) * query.limit,
      take: query.limit,
    });
    return { items, total };
  }
}
