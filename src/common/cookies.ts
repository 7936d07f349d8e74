/** Express has no cookie parser here; the few cookies the service reads need only a split. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const index = pair.indexOf('=');
    if (index > 0 && pair.slice(0, index).trim() === name) {
      const value = pair.slice(index + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}
