/** TypeORM hands back the rows of an UPDATE … RETURNING on PostgreSQL as `[rows, affected]`. */
export function returnedRows<T>(result: [T[], number] | T[]): T[] {
  return (Array.isArray(result[0]) ? result[0] : result) as T[];
}
