import 'express-session';

/** What a cookie session holds. Never the role: user facts are read from the users table on each request. */
declare module 'express-session' {
  interface SessionData {
    userId: string;
    /** The id shown in session listings and used to revoke one; the secret cookie id never leaves the store. */
    publicId: string;
    /** When the user proved their password (ms); compared with the user's revokedBefore. */
    authAt: number;
    createdAt: number;
    lastSeenAt: number;
    csrfToken: string;
    /** The login passed a second factor. */
    mfa?: boolean;
    userAgent?: string;
    ip?: string;
  }
}

export {};
