// The example app: everything it does with the service goes through @auth-service/client.
//   ?api=http://127.0.0.1:3000   the service's URL (that is the default)
import { AuthClientError, createAuthClient } from '@auth-service/client';

const params = new URLSearchParams(location.search);
const baseUrl = params.get('api') ?? 'http://127.0.0.1:3000';
// Kept across reloads and shared by the tabs, so that restore() looks for the credential the user chose.
const method = localStorage.getItem('example.method') === 'session' ? 'session' : 'token';

const auth = createAuthClient({
  baseUrl,
  mode: method,
  // Token mode: the refresh token lives in the HttpOnly `rt` cookie, out of this page's reach.
  refreshToken: 'cookie',
  // Only for the tests, which make tokens fall due sooner than a person would wait for.
  ...(params.has('refreshAhead') ? { refreshAheadSeconds: Number(params.get('refreshAhead')) } : {}),
});
// Try it from the browser console: await auth.api.GET('/api/me').
window.auth = auth;

const $ = (selector) => document.querySelector(selector);

/** What a person should read for each error code; see docs/frontend.md. */
const advice = {
  INVALID_CREDENTIALS: 'Wrong email or password.',
  EMAIL_NOT_VERIFIED: 'Confirm your email address first: use the link we mailed you.',
  EMAIL_TAKEN: 'An account with this email already exists: sign in instead.',
  MFA_INVALID: 'That code did not work. Codes change every 30 seconds; sign in again if this keeps failing.',
  RATE_LIMITED: 'Too many attempts. Wait a moment and try again.',
  SERVICE_UNAVAILABLE: 'The service is busy or down. Try again shortly.',
  CSRF_FAILED:
    "The service refused this page's origin: it must be in CORS_ORIGINS, and on the service's site.",
  NOT_FOUND: 'That sign-in is already gone.',
};

function say(text) {
  $('#message').textContent = text;
}

function explain(error) {
  if (!(error instanceof AuthClientError)) return say(`Could not reach the service (${error.message}).`);
  const fields = error.details?.map(({ field, message }) => `${field}: ${message}`).join('; ');
  const wait = error.retryAfter ? ` (${error.retryAfter} s)` : '';
  say(
    (advice[error.code] ?? fields ?? `Something went wrong (${error.code}, request ${error.requestId}).`) +
      wait,
  );
}

/** Runs a user action, turning a refusal into a message. */
async function attempt(run) {
  say('');
  try {
    await run();
  } catch (error) {
    explain(error);
  }
}

function onSubmit(form, run) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt(run);
  });
}

function onClick(button, run) {
  button.addEventListener('click', () => void attempt(run));
}

function show(state) {
  document.body.dataset.state = state;
  for (const part of document.querySelectorAll('[data-when]')) part.hidden = part.dataset.when !== state;
}

async function renderSignedIn(user) {
  show('signed-in');
  $('#user').textContent = `${user.displayName ?? user.email} (${user.email}, ${user.role})`;
  const [me, signIns] = await Promise.all([auth.me(), auth.listSignIns()]);
  $('#auth-info').textContent = JSON.stringify(me.auth, null, 2);
  $('#sign-ins').replaceChildren(...signIns.map(signInRow));
}

function signInRow(signIn) {
  const row = document.createElement('tr');
  for (const text of [signIn.method, signIn.userAgent ?? '', signIn.ip ?? '', signIn.lastSeenAt]) {
    row.insertCell().textContent = text;
  }
  const revoke = document.createElement('button');
  revoke.textContent = signIn.current ? 'Revoke (this one)' : 'Revoke';
  onClick(revoke, async () => {
    await auth.revokeSignIn(signIn.id);
    if (auth.user) await renderSignedIn(auth.user);
  });
  row.insertCell().append(revoke);
  return row;
}

let mfaToken;

onSubmit($('#sign-in'), async () => {
  const result = await auth.login({ email: $('#email').value, password: $('#password').value });
  if (result.status === 'mfa-required') {
    mfaToken = result.mfaToken;
    show('mfa');
  }
});
onClick($('#register-button'), async () => {
  await auth.register({ email: $('#email').value, password: $('#password').value });
  say('Account created: sign in.');
});
onSubmit($('#second-factor'), () => auth.verifyMfa({ mfaToken, code: $('#code').value }));
onClick($('#reload-button'), () => renderSignedIn(auth.user));
onClick($('#logout-button'), () => auth.logout());
onClick($('#logout-all-button'), () => auth.logoutAll());

for (const radio of document.querySelectorAll('[name=method]')) {
  radio.checked = radio.value === method;
  // The client is made for one method, so a switch starts the page again with the other.
  radio.addEventListener('change', () => {
    localStorage.setItem('example.method', radio.value);
    location.reload();
  });
}

// Signing in, restoring and signing out (here or in another tab) all come through here.
auth.onChange((user) => {
  if (!user) return show('signed-out');
  renderSignedIn(user).catch(explain);
});
auth.onSignedOut((reason) => {
  const why = {
    logout: 'You are signed out.',
    revoked: 'This sign-in was ended elsewhere. Sign in again.',
    expired: 'Your sign-in expired. Sign in again.',
  };
  say(why[reason]);
});

void attempt(async () => {
  if (!(await auth.restore())) show('signed-out');
});
