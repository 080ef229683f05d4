// The API's errors in words a person understands (codes from extensions.code).

import {
  CannotOpenBackupError, IdentityChangedError, SendFailedError, StaleBackupError, UntrustedKeyError, apiErrors, errorCode, retryAfterSeconds,
} from '@qchat/client';

export interface DescribeOptions {
  /** On the sign-in form UNAUTHENTICATED means a wrong name or password, not an expired session. */
  readonly signIn?: boolean;
  /** On the registration form CONFLICT means the name is taken. */
  readonly register?: boolean;
}

export function describeError(err: unknown, opts: DescribeOptions = {}): string {
  const e = err instanceof SendFailedError ? err.cause : err;
  if (e instanceof IdentityChangedError) return `${e.username}'s identity key has changed. Sending is blocked until you accept the new key.`;
  if (e instanceof UntrustedKeyError) {
    return e.reason === 'no-certificate'
      ? `${e.username} uses an account from before signed messages and has no certified key yet: nothing can be sent here until ${e.username} signs in again.`
      : `The server gave a key for ${e.username} that this browser cannot trust (${e.reason === 'bad-certificate' ? 'its certificate does not match the identity key you know' : 'it is older than one seen before'}). Nothing was sent.`;
  }
  if (e instanceof CannotOpenBackupError) return 'Cannot open the key backup: check the recovery key or passphrase and try again.';
  if (e instanceof StaleBackupError) return 'This backup is of keys your account no longer uses (they were replaced after the backup was made).';
  const first = apiErrors(e)[0];
  switch (errorCode(e)) {
    case 'RATE_LIMITED': {
      const s = retryAfterSeconds(e);
      if (!s) return 'Too many requests. Wait a moment and try again.';
      if (s < 90) return `Too many requests. Try again in ${s} second${s === 1 ? '' : 's'}.`;
      const m = Math.ceil(s / 60);
      return `Too many requests. Try again in ${m} minutes.`;
    }
    case 'UNAUTHENTICATED':
      return opts.signIn ? 'Wrong username or password.' : 'Your session has ended. Please sign in again.';
    case 'FORBIDDEN':
      return 'You are not allowed to do that here.';
    case 'NOT_FOUND':
      return 'Not found: it may have been deleted, or the name or code is wrong.';
    case 'CONFLICT':
      return opts.register ? 'That username is taken. Choose another one.' : `That conflicts with something that already exists${first ? ` (${first.message})` : ''}.`;
    case 'BAD_USER_INPUT':
      return `Please check what you entered${first ? `: ${first.message}` : '.'}`;
    case 'COMPLEXITY_LIMIT_EXCEEDED':
      return 'That request was too large for the server.';
    case 'INTERNAL_SERVER_ERROR':
      return 'Something went wrong on the server. Please try again.';
    case null:
      break;
    default:
      return first?.message ?? 'Something went wrong.';
  }
  if (typeof navigator !== 'undefined' && !navigator.onLine) return 'You are offline. Check your connection and try again.';
  return 'Cannot reach the server. Check your connection and try again.';
}
