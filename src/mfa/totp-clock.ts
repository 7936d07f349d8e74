/** Where TOTP reads the time; a provider of its own so tests can move it without touching the system clock. */
export class TotpClock {
  now(): number {
    return Date.now();
  }
}
