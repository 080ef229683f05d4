// Where a signed-in session lives in the browser.
//
// The session token is kept in sessionStorage: it survives a reload of the
// tab, other sites cannot read it (storage is per origin), and it is gone when
// the tab closes, so a token left on a shared computer does not outlive the
// tab. The strict CSP (no inline or foreign script) is what keeps a script
// of someone else's away from it. The secret key seeds are never here: they
// live only in IndexedDB, through @qchat/client's KeyStore.

import type { IdentityKeyPair, KeyPair, KeyStore } from '@qchat/client';

export interface SavedSession {
  readonly token: string;
  readonly userId: string;
  readonly username: string;
}

/**
 * A signed-in user on this browser: the token, and the keys the KeyStore
 * holds for it (an Account of @qchat/client: sending and opening take it).
 */
export interface Session extends SavedSession {
  readonly store: KeyStore;
  /** The identity key pair; null until this browser has the account's keys (restored from the backup). */
  readonly identity: IdentityKeyPair | null;
  /** Key id → key pair; replaced (not mutated) when a key is added. */
  readonly keyRing: ReadonlyMap<string, KeyPair>;
}

const STORAGE_KEY = 'qchat.session';

export function loadSession(): SavedSession | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null) return null;
    const { token, userId, username } = v as Record<string, unknown>;
    if (typeof token !== 'string' || typeof userId !== 'string' || typeof username !== 'string') return null;
    return { token, userId, username };
  } catch {
    return null;
  }
}

export function saveSession(s: SavedSession): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token: s.token, userId: s.userId, username: s.username }));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
