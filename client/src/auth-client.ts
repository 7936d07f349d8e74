import createClient, { type Client } from 'openapi-fetch';
import { AuthClientError, errorBodyOf } from './errors.js';
import type { paths } from './schema.js';
import { tabsFor, type SignedOutReason, type TabMessage, type Tabs } from './tabs.js';
import type {
  ChangeEmailInput,
  ChangePasswordInput,
  Credentials,
  DeleteAccountInput,
  DisableTotpInput,
  ErrorCode,
  LoginResult,
  Me,
  RecoveryCodes,
  RegisterInput,
  ResetPasswordInput,
  SessionLoginResponse,
  SignIn,
  TokenResponse,
  TotpEnrolment,
  User,
} from './types.js';

/** Where a body refresh token lives between page loads or app starts: the app's choice of storage. */
export interface RefreshTokenStorage {
  get(): string | null | Promise<string | null>;
  set(value: string | null): void | Promise<void>;
}

/** Where a client without cookies keeps the device token a login hands out, to send it back next time. */
export interface DeviceTokenStorage {
  get(): string | null;
  set(value: string | null): void;
}

export interface AuthClientOptions {
  baseUrl: string;
  mode: 'session' | 'token';
  /** Token mode: the HttpOnly `rt` cookie (default), or a storage for a refresh token carried in bodies. */
  refreshToken?: 'cookie' | RefreshTokenStorage;
  fetch?: (request: Request) => Promise<Response>;
  /** Refresh this long before the access token expires (at most half its lifetime). Default 30. */
  refreshAheadSeconds?: number;
  /** Names the Web Lock and BroadcastChannel the tabs of an origin share. Default derived from baseUrl. */
  lockName?: string;
  deviceTokenStorage?: DeviceTokenStorage;
}

export type AuthApi = Client<paths>;
export type { SignedOutReason };

type Answer<T> = { data?: T; error?: unknown; response: Response };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Codes after which this sign-in is gone: the user has to sign in again. */
const SIGNED_OUT_CODES = new Set<ErrorCode>([
  'SESSION_INVALID',
  'TOKEN_REVOKED',
  'REFRESH_TOKEN_INVALID',
  'REFRESH_TOKEN_REUSED',
]);
/**
 * How long a tab waits for the message of a refresh another tab is known to have made, before it refreshes
 * itself (the other tab may have closed before its message went out).
 */
const ANNOUNCED_REFRESH_WAIT_MS = 5000;

export function createAuthClient(options: AuthClientOptions): AuthClient {
  return new AuthClient(options);
}

/**
 * Signs a user in to the auth service by either method and keeps the credentials working: CSRF tokens,
 * access token refresh (once across every tab of the origin), sign-out seen by every tab.
 */
export class AuthClient {
  /** The service's routes, typed by its OpenAPI document, sent with this client's credentials. */
  readonly api: AuthApi;

  private readonly mode: 'session' | 'token';
  private readonly refreshStorage: RefreshTokenStorage | undefined;
  private readonly transport: (request: Request) => Promise<Response>;
  private readonly baseUrl: string;
  private readonly basePath: string;
  private readonly refreshAheadMs: number;
  private readonly deviceTokens: DeviceTokenStorage | undefined;
  private readonly csrfKey: string;
  private readonly tabs: Tabs;
  private readonly signedOutListeners = new Set<(reason: SignedOutReason) => void>();
  private readonly changeListeners = new Set<(user: User | null) => void>();

  private currentUser: User | null = null;
  /** The session's CSRF token, or in `rt` cookie mode the refresh cookie's. */
  private csrfToken: string | null = null;
  private accessToken: string | null = null;
  private accessExpiresAt = 0;
  private accessLifetimeMs = 0;
  /** When this tab got the access token it holds (its own refresh, or another tab's message). */
  private accessHeldSince = 0;
  /** When the sign-in ends if nothing renews it: a rejection before then was a revocation. */
  private credentialExpiresAt = 0;
  private refreshing: Promise<void> | undefined;

  constructor(options: AuthClientOptions) {
    this.mode = options.mode;
    this.refreshStorage = options.refreshToken === 'cookie' ? undefined : options.refreshToken;
    this.transport = options.fetch ?? ((request) => fetch(request));
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.basePath = new URL(this.baseUrl).pathname.replace(/\/+$/, '');
    this.refreshAheadMs = (options.refreshAheadSeconds ?? 30) * 1000;
    this.deviceTokens = options.deviceTokenStorage;
    const lockName = options.lockName ?? `auth-client:${this.baseUrl}`;
    this.csrfKey = `${lockName}:csrf`;
    this.tabs = tabsFor(lockName, (message) => this.heard(message));
    if (this.usesRefreshCookie) this.csrfToken = readSessionStorage(this.csrfKey);
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      credentials: 'include',
      fetch: (request) => this.send(request),
    });
  }

  get user(): User | null {
    return this.currentUser;
  }

  onSignedOut(listener: (reason: SignedOutReason) => void): () => void {
    this.signedOutListeners.add(listener);
    return () => this.signedOutListeners.delete(listener);
  }

  onChange(listener: (user: User | null) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async login(credentials: Credentials): Promise<LoginResult> {
    const body = { email: credentials.email, password: credentials.password, ...this.deviceToken() };
    const data =
      this.mode === 'session'
        ? dataOf(await this.api.POST('/api/auth/session/login', { body }))
        : dataOf(
            await this.api.POST('/api/auth/token/login', {
              body: { ...body, ...(this.usesRefreshCookie ? { refreshTokenInCookie: true } : {}) },
            }),
          );
    if ('mfaRequired' in data)
      return { status: 'mfa-required', mfaToken: data.mfaToken, methods: data.methods };
    return { status: 'signed-in', user: await this.signedIn(data) };
  }

  /** The second step of a login that answered `mfa-required`, with a TOTP or recovery code. */
  async verifyMfa(input: { mfaToken: string; code: string }): Promise<{ status: 'signed-in'; user: User }> {
    const answer = await this.api.POST('/api/auth/mfa/verify', { body: { ...input, ...this.deviceToken() } });
    return { status: 'signed-in', user: await this.signedIn(dataOf(answer)) };
  }

  /** After a page load: the user of the sign-in that survived it, or null. */
  async restore(): Promise<User | null> {
    if (this.mode === 'session') return (await this.refetchSessionCsrf()) ? this.currentUser : null;
    if (this.currentUser && this.accessToken && !this.refreshDue()) return this.currentUser;
    if (
      this.usesRefreshCookie
        ? !(this.csrfToken ?? (await this.tabs.exclusive(() => this.refetchRefreshCsrf())))
        : !(await this.refreshStorage!.get())
    ) {
      return null;
    }
    try {
      await this.refresh(this.accessToken);
    } catch (error) {
      if (error instanceof AuthClientError && error.status === 401) return null;
      throw error;
    }
    return this.currentUser;
  }

  /** Ends this sign-in at the service and in every tab. */
  async logout(): Promise<void> {
    try {
      if (this.mode === 'session') {
        dataOf(await this.api.POST('/api/auth/session/logout'));
      } else {
        await this.tokenLogout();
      }
    } catch (error) {
      // Already signed out at the service: what the caller wanted.
      if (!(error instanceof AuthClientError && error.status === 401)) throw error;
    } finally {
      this.signOut('logout');
    }
  }

  /** Token mode: a valid access token (refreshed first when due), for the app's calls to other services. */
  async getAccessToken(): Promise<string | null> {
    if (this.mode === 'session') return null;
    if (this.accessToken && this.refreshDue()) await this.refresh(this.accessToken);
    return this.accessToken;
  }

  async register(input: RegisterInput): Promise<User> {
    return dataOf(await this.api.POST('/api/auth/register', { body: input })).user;
  }

  async me(): Promise<Me> {
    const me = dataOf(await this.api.GET('/api/me'));
    this.setUser(me.user);
    return me;
  }

  async listSignIns(): Promise<SignIn[]> {
    return dataOf(await this.api.GET('/api/me/sessions'));
  }

  async revokeSignIn(id: string): Promise<void> {
    dataOf(await this.api.DELETE('/api/me/sessions/{id}', { params: { path: { id } } }));
  }

  /** Signs the user out everywhere, this sign-in included. */
  async logoutAll(): Promise<void> {
    dataOf(await this.api.POST('/api/me/logout-all'));
    await this.forget();
  }

  async changePassword(input: ChangePasswordInput): Promise<void> {
    dataOf(await this.api.POST('/api/me/password', { body: input }));
    // The change revoked every access token of the user; this sign-in's refresh family survives it.
    if (this.mode === 'token') await this.refresh(this.accessToken);
  }

  async deleteAccount(input: DeleteAccountInput): Promise<void> {
    dataOf(await this.api.DELETE('/api/me', { body: input }));
    await this.forget();
  }

  async forgotPassword(input: { email: string }): Promise<void> {
    dataOf(await this.api.POST('/api/auth/password/forgot', { body: input }));
  }

  async resetPassword(input: ResetPasswordInput): Promise<void> {
    dataOf(await this.api.POST('/api/auth/password/reset', { body: input }));
  }

  async verifyEmail(input: { token: string }): Promise<void> {
    dataOf(await this.api.POST('/api/auth/email/verify', { body: input }));
  }

  async requestEmailVerification(): Promise<'sent' | 'already-verified'> {
    const answer = await this.api.POST('/api/me/email/verification');
    dataOf(answer);
    return answer.response.status === 204 ? 'already-verified' : 'sent';
  }

  async changeEmail(input: ChangeEmailInput): Promise<void> {
    dataOf(await this.api.POST('/api/me/email', { body: input }));
  }

  async enrolTotp(input: { password: string }): Promise<TotpEnrolment> {
    return dataOf(await this.api.POST('/api/me/mfa/totp', { body: input }));
  }

  async confirmTotp(input: { code: string }): Promise<RecoveryCodes> {
    const codes = dataOf(await this.api.POST('/api/me/mfa/totp/confirm', { body: input }));
    if (this.currentUser) this.setUser({ ...this.currentUser, mfaEnabled: true });
    return codes;
  }

  async disableTotp(input: DisableTotpInput): Promise<void> {
    dataOf(await this.api.DELETE('/api/me/mfa/totp', { body: input }));
    if (this.currentUser) this.setUser({ ...this.currentUser, mfaEnabled: false });
  }

  async regenerateRecoveryCodes(input: { code: string }): Promise<RecoveryCodes> {
    return dataOf(await this.api.POST('/api/me/mfa/recovery-codes', { body: input }));
  }

  /** Stops listening to the other tabs. */
  close(): void {
    this.tabs.close();
  }

  private get usesRefreshCookie(): boolean {
    return this.mode === 'token' && !this.refreshStorage;
  }

  private deviceToken(): { deviceToken?: string } {
    const token = this.deviceTokens?.get();
    return token ? { deviceToken: token } : {};
  }

  /** Every call of `api`: credentials on, retried once after a refresh or a new CSRF token. */
  private async send(request: Request): Promise<Response> {
    const retry = request.clone();
    const sentToken = await this.authorise(request);
    const response = await this.transport(request);
    if (response.status !== 401 && response.status !== 403) return response;
    const { code } = await errorBodyOf(response);
    if (code === 'TOKEN_EXPIRED' || (code === 'TOKEN_REVOKED' && this.mode === 'token')) {
      // A revoked access token may belong to a family that survived (a password change made with it).
      if (sentToken && (await this.refreshQuietly(sentToken, code)))
        return this.settle(await this.resend(retry));
    } else if (code === 'CSRF_FAILED' && (await this.refetchCsrf(this.pathOf(retry)))) {
      return this.settle(await this.resend(retry));
    }
    return this.settle(response, code);
  }

  private async resend(request: Request): Promise<Response> {
    await this.authorise(request);
    return this.transport(request);
  }

  /** Adds the credentials a request needs; answers the access token it sent. */
  private async authorise(request: Request): Promise<string | null> {
    const path = this.pathOf(request);
    if (!SAFE_METHODS.has(request.method)) {
      const csrf = this.mode === 'session' || path.startsWith('/api/auth/token/') ? this.csrfToken : null;
      if (csrf) request.headers.set('X-CSRF-Token', csrf);
    }
    if (this.mode !== 'token' || !takesBearer(path) || !this.accessToken) return null;
    if (this.refreshDue()) await this.refreshQuietly(this.accessToken, 'TOKEN_EXPIRED');
    if (this.accessToken) request.headers.set('Authorization', `Bearer ${this.accessToken}`);
    return this.accessToken;
  }

  /** Signs out when the service said this sign-in is gone. */
  private async settle(response: Response, known?: ErrorCode): Promise<Response> {
    if (response.status !== 401) return response;
    const code = known ?? (await errorBodyOf(response)).code;
    if (code && SIGNED_OUT_CODES.has(code)) this.signOut(this.reasonFor(code));
    return response;
  }

  private pathOf(request: Request): string {
    return new URL(request.url).pathname.slice(this.basePath.length);
  }

  private refreshDue(): boolean {
    const ahead = Math.min(this.refreshAheadMs, this.accessLifetimeMs / 2);
    return Date.now() >= this.accessExpiresAt - ahead;
  }

  /** True when a working access token came of it; a failed refresh leaves the request to fail as it will. */
  private async refreshQuietly(stale: string, cause: ErrorCode): Promise<boolean> {
    try {
      await this.refresh(stale, cause);
      return this.accessToken !== null;
    } catch {
      return false;
    }
  }

  /**
   * One refresh at a time across every tab: inside the lock, a tab that meanwhile got a newer token from
   * another tab uses it instead, so no refresh token is ever presented twice from one origin.
   */
  private refresh(stale: string | null, cause: ErrorCode = 'TOKEN_EXPIRED'): Promise<void> {
    this.refreshing ??= this.tabs
      .exclusive(async (waitedSince) => {
        if (this.replacedWhileWaiting(stale)) return;
        // Another tab refreshed after this one got its token: its message may still be on the way (under
        // load it can arrive after that tab released the lock), so wait for it rather than refresh again.
        const since = this.accessToken === null ? waitedSince : this.accessHeldSince;
        if ((await this.tabs.lastRefreshAnnounced()) > since) {
          await this.tabs.nextRefresh(ANNOUNCED_REFRESH_WAIT_MS);
          if (this.replacedWhileWaiting(stale)) return;
        }
        await this.refreshNow(cause);
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private replacedWhileWaiting(stale: string | null): boolean {
    return this.accessToken !== null && this.accessToken !== stale && !this.refreshDue();
  }

  /** Holds the lock: the storage's new refresh token is written before another tab may read it. */
  private async refreshNow(cause: ErrorCode): Promise<void> {
    let response = await this.postRefresh();
    if (
      response.status === 403 &&
      (await errorBodyOf(response)).code === 'CSRF_FAILED' &&
      (await this.refetchRefreshCsrf())
    ) {
      response = await this.postRefresh();
    }
    if (!response.ok) {
      const error = await AuthClientError.from(response);
      if (SIGNED_OUT_CODES.has(error.code)) {
        await this.refreshStorage?.set(null);
        this.signOut(cause === 'TOKEN_REVOKED' ? 'revoked' : this.reasonFor(error.code));
      }
      throw error;
    }
    const tokens = (await response.json()) as TokenResponse;
    await this.refreshStorage?.set('refreshToken' in tokens ? tokens.refreshToken : null);
    this.acceptTokens(tokens);
  }

  private async postRefresh(): Promise<Response> {
    const refreshToken = this.refreshStorage ? await this.refreshStorage.get() : undefined;
    return this.transport(
      this.request('/api/auth/token/refresh', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(this.csrfToken ? { 'X-CSRF-Token': this.csrfToken } : {}),
        },
        body: JSON.stringify(this.refreshStorage ? { refreshToken } : {}),
      }),
    );
  }

  private async tokenLogout(): Promise<void> {
    // Bearer-authenticated: a token that is due is refreshed first, outside the lock the logout holds.
    if (this.accessToken && this.refreshDue()) await this.refreshQuietly(this.accessToken, 'TOKEN_EXPIRED');
    await this.tabs.exclusive(async () => {
      const refreshToken = this.refreshStorage ? await this.refreshStorage.get() : undefined;
      const response = await this.transport(
        this.request('/api/auth/token/logout', {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            ...(this.accessToken ? { Authorization: `Bearer ${this.accessToken}` } : {}),
            ...(this.csrfToken ? { 'X-CSRF-Token': this.csrfToken } : {}),
          },
          body: JSON.stringify(this.refreshStorage ? { refreshToken } : {}),
        }),
      );
      await this.refreshStorage?.set(null);
      if (!response.ok) throw await AuthClientError.from(response);
    });
  }

  private refetchCsrf(path: string): Promise<boolean> {
    if (this.mode === 'session') return this.refetchSessionCsrf();
    if (!path.startsWith('/api/auth/token/') || !this.usesRefreshCookie) return Promise.resolve(false);
    return this.refetchRefreshCsrf().then((token) => token !== null);
  }

  /** GET /api/auth/session: the session's CSRF token and user, or a sign-out when the session is gone. */
  private async refetchSessionCsrf(): Promise<boolean> {
    const response = await this.transport(this.request('/api/auth/session'));
    if (response.status === 401) {
      await this.settle(response);
      return false;
    }
    if (!response.ok) throw await AuthClientError.from(response);
    const session = (await response.json()) as { user: User; csrfToken: string; expiresAt: string };
    this.csrfToken = session.csrfToken;
    this.credentialExpiresAt = Date.parse(session.expiresAt);
    this.setUser(session.user);
    return true;
  }

  /** GET /api/auth/token/csrf: the `rt` cookie's CSRF token after a reload, or null without a live cookie. */
  private async refetchRefreshCsrf(): Promise<string | null> {
    const response = await this.transport(this.request('/api/auth/token/csrf'));
    if (response.status === 401) return null;
    if (!response.ok) throw await AuthClientError.from(response);
    this.keepCsrf(((await response.json()) as { csrfToken: string }).csrfToken);
    return this.csrfToken;
  }

  private request(path: string, init: RequestInit = {}): Request {
    return new Request(`${this.baseUrl}${path}`, { ...init, credentials: 'include' });
  }

  private async signedIn(answer: SessionLoginResponse | TokenResponse): Promise<User> {
    if ('accessToken' in answer) {
      if (answer.deviceToken) this.deviceTokens?.set(answer.deviceToken);
      // Under the lock: a refresh of the previous sign-in must not overwrite the new refresh token.
      await this.tabs.exclusive(async () => {
        if (this.refreshStorage)
          await this.refreshStorage.set('refreshToken' in answer ? answer.refreshToken : null);
        this.acceptTokens(answer);
      });
    } else {
      this.csrfToken = answer.csrfToken;
      this.credentialExpiresAt = Date.parse(answer.expiresAt);
      this.setUser(answer.user);
    }
    return answer.user;
  }

  private acceptTokens(tokens: TokenResponse): void {
    const now = Date.now();
    this.accessToken = tokens.accessToken;
    this.accessLifetimeMs = tokens.expiresIn * 1000;
    this.accessExpiresAt = now + this.accessLifetimeMs;
    this.credentialExpiresAt = now + tokens.refreshExpiresIn * 1000;
    if ('csrfToken' in tokens) this.keepCsrf(tokens.csrfToken);
    this.setUser(tokens.user);
    this.tabs.announce({
      type: 'refreshed',
      accessToken: this.accessToken,
      expiresAt: this.accessExpiresAt,
      lifetimeMs: this.accessLifetimeMs,
      csrfToken: this.csrfToken ?? undefined,
      user: tokens.user,
    });
    // After the announcement, whose time the other tabs compare with their own: not newer than this token.
    this.accessHeldSince = Date.now();
  }

  private keepCsrf(token: string): void {
    this.csrfToken = token;
    writeSessionStorage(this.csrfKey, token);
  }

  private heard(message: TabMessage): void {
    if (message.type === 'signed-out') {
      this.signOut(message.reason, false);
      return;
    }
    this.accessToken = message.accessToken;
    this.accessExpiresAt = message.expiresAt;
    this.accessLifetimeMs = message.lifetimeMs;
    this.accessHeldSince = Date.now();
    if (message.csrfToken) this.keepCsrf(message.csrfToken);
    this.setUser(message.user);
  }

  /** After a call that ended this sign-in at the service: its refresh token is dead, the tabs sign out. */
  private async forget(): Promise<void> {
    if (this.refreshStorage) await this.tabs.exclusive(async () => this.refreshStorage!.set(null));
    this.signOut('logout');
  }

  private reasonFor(code: ErrorCode): SignedOutReason {
    if (code === 'TOKEN_REVOKED' || code === 'REFRESH_TOKEN_REUSED') return 'revoked';
    return Date.now() < this.credentialExpiresAt ? 'revoked' : 'expired';
  }

  private signOut(reason: SignedOutReason, announce = true): void {
    const wasSignedIn = this.currentUser !== null || this.accessToken !== null;
    this.accessToken = null;
    this.accessExpiresAt = 0;
    this.credentialExpiresAt = 0;
    this.csrfToken = null;
    writeSessionStorage(this.csrfKey, null);
    // A tab that was not signed in (a restore that found nothing) has nothing to tell the others.
    if (!wasSignedIn) return;
    if (announce) this.tabs.announce({ type: 'signed-out', reason });
    this.setUser(null);
    for (const listener of this.signedOutListeners) listener(reason);
  }

  private setUser(user: User | null): void {
    if (JSON.stringify(user) === JSON.stringify(this.currentUser)) return;
    this.currentUser = user;
    for (const listener of this.changeListeners) listener(user);
  }
}

/** Routes that take an access token: all of /api but the public auth routes, plus token logout. */
function takesBearer(path: string): boolean {
  return path.startsWith('/api/') && (!path.startsWith('/api/auth/') || path === '/api/auth/token/logout');
}

/** The body of a 2xx answer, or the service's error thrown as an AuthClientError. */
function dataOf<T>(answer: Answer<T>): T {
  if (!answer.response.ok) throw AuthClientError.of(answer.response, answer.error);
  return answer.data as T;
}

interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The tab's sessionStorage, where a browser has one (it outlives a reload, unlike memory). */
function sessionStorageOf(): SessionStorageLike | undefined {
  try {
    return (globalThis as { sessionStorage?: SessionStorageLike }).sessionStorage;
  } catch {
    return undefined;
  }
}

function readSessionStorage(key: string): string | null {
  try {
    return sessionStorageOf()?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function writeSessionStorage(key: string, value: string | null): void {
  try {
    const storage = sessionStorageOf();
    if (value === null) storage?.removeItem(key);
    else storage?.setItem(key, value);
  } catch {
    // Storage disabled: the token stays in memory, and a reload fetches it again.
  }
}
