import { QueryFailedError } from 'typeorm';
import { serializeError } from './logger';

describe('serializeError', () => {
  const secret = '$2b$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01';

  it('keeps the statement and the identifiers of a failed query, never its parameters, detail or quoted values', () => {
    const driverError = Object.assign(new Error(`invalid input syntax for type uuid: "${secret}"`), {
      code: '22P02',
      severity: 'ERROR',
      detail: `Key (password_hash)=(${secret}) already exists.`,
      where: `SQL statement with ${secret}`,
      table: 'users',
      constraint: 'users_email_key',
    });
    const error = new QueryFailedError(
      'UPDATE users SET password_hash = $1 WHERE id = $2',
      [secret, 'id'],
      driverError,
    );
    const serialized = serializeError(error);
    expect(serialized).toMatchObject({
      type: 'QueryFailedError',
      code: '22P02',
      table: 'users',
      constraint: 'users_email_key',
      query: 'UPDATE users SET password_hash = $1 WHERE id = $2',
      message: 'invalid input syntax for type uuid: "…"',
    });
    expect(JSON.stringify(serialized)).not.toContain(secret);
    expect(serialized).not.toHaveProperty('parameters');
    expect(serialized).not.toHaveProperty('detail');
  });

  it('follows causes, and logs only the type of something thrown that is not an Error', () => {
    const wrapped = new Error('backend unavailable', { cause: new Error('Connection terminated') });
    expect(serializeError(wrapped)).toMatchObject({ cause: { message: 'Connection terminated' } });
    expect(serializeError(secret)).toEqual({ type: 'string' });
  });
});
