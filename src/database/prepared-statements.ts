import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/** A statement of a hot path, with the name PostgreSQL keeps it prepared under on each connection. */
export interface PreparedStatement {
  name: string;
  text: string;
}

/**
 * Runs the statements of the hottest write path (every refresh) straight on TypeORM's pg pool, sharing its
 * connections and their timeouts. TypeORM's query layer takes a query runner per statement, announces
 * each one to its subscribers and copies the result; the pool hands back the rows. On PostgreSQL each
 * statement is prepared once per connection, so a later run sends only its parameters, and the server
 * neither parses nor plans it again (a rotation's text is 3 KB). PGlite, embedded or reached through
 * DATABASE_URL, serves every connection from one backend, where a name prepared on one connection collides
 * with the same name on the next, so there statements go unnamed; the server says which it is at start.
 */
@Injectable()
export class PreparedStatements implements OnModuleInit {
  private prepare = false;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async onModuleInit(): Promise<void> {
    const [{ version }] = await this.dataSource.query<{ version: string }[]>('SELECT version()');
    this.prepare = !version.includes('PGlite');
  }

  async rows<Row>(statement: PreparedStatement, values: unknown[]): Promise<Row[]> {
    const pool = (this.dataSource.driver as PostgresDriver).master as Pool;
    const result = await pool.query<Row & object>({
      ...(this.prepare ? { name: statement.name } : {}),
      text: statement.text,
      values,
    });
    return result.rows;
  }
}
