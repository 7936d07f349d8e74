import { Injectable } from '@nestjs/common';

/**
 * The time as the service reads it where a test needs to move it (token lifetimes counted in minutes):
 * an e2e spec overrides this provider instead of sleeping.
 */
@Injectable()
export class Clock {
  /** Milliseconds since the epoch. */
  now(): number {
    return Date.now();
  }

  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
}
