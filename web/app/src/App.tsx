// The app's root: one Apollo Client for the page, the session (token and
// keys), and the signed-out or signed-in screens.

import { ApolloProvider } from '@apollo/client/react';
import { KeyStore, LogoutDocument } from '@qchat/client';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createApi } from './api';
import { Router } from './router';
import { SignedOut } from './screens/Auth';
import { Shell } from './screens/Shell';
import { type SavedSession, type Session, clearSession, loadSession, saveSession } from './session';

export function App() {
  const tokenRef = useRef<string | null>(null);
  const api = useMemo(() => createApi(() => tokenRef.current), []);
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => loadSession() !== null);

  const signIn = useCallback(async (s: SavedSession, store?: KeyStore) => {
    const keys = store ?? (await KeyStore.open());
    const keyRing = await keys.keyRing(s.userId);
    const identity = await keys.getIdentity(s.userId);
    tokenRef.current = s.token;
    saveSession(s);
    // The websocket, if any, still carries the previous token.
    await api.link.reconnect();
    setSession({ ...s, store: keys, keyRing, identity });
  }, [api]);

  const signOut = useCallback(async () => {
    if (tokenRef.current) {
      await api.client.mutate({ mutation: LogoutDocument }).catch(() => {});
    }
    tokenRef.current = null;
    clearSession();
    setSession(null);
    // Closes the websocket: its subscriptions end with the signed-in screens.
    await api.link.reconnect();
    await api.client.clearStore();
  }, [api]);

  useEffect(() => {
    const saved = loadSession();
    if (!saved) return;
    signIn(saved)
      .catch(() => clearSession())
      .finally(() => setRestoring(false));
  }, [signIn]);

  // After a restore, a rotation or a new identity: the store is the truth.
  const reloadKeys = useCallback(async () => {
    const s = session;
    if (!s) return;
    const keyRing = await s.store.keyRing(s.userId);
    const identity = await s.store.getIdentity(s.userId);
    setSession((cur) => (cur && cur.userId === s.userId ? { ...cur, keyRing, identity } : cur));
  }, [session]);

  return (
    <ApolloProvider client={api.client}>
      <Router>
        {restoring ? (
          <p className="loading" role="status">Loading…</p>
        ) : session ? (
          <Shell session={session} api={api} onSignOut={signOut} onKeys={reloadKeys} />
        ) : (
          <SignedOut onSignedIn={signIn} />
        )}
      </Router>
    </ApolloProvider>
  );
}
