// Identity key changes of contacts (PROTOCOL-V2 §4): learned at start-up
// (every pinned contact checked), live from the keyChanged subscription, when
// a conversation opens, and from a send the library refused
// (IdentityChangedError). A changed contact stays in the list,
// and nothing is sealed to it, until the person accepts the new key.

import { useApolloClient, useSubscription } from '@apollo/client/react';
import { IdentityChangedError, KeyChangedDocument, checkContactIdentity, checkPinnedContacts } from '@qchat/client';
import { type ReactNode, createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { Session } from './session';

export interface ChangedContact {
  readonly userId: string;
  readonly username: string;
  /** The identity key the server now presents. */
  readonly identityKey: Uint8Array;
}

interface Trust {
  /** Contacts whose identity key changed and was not accepted yet, by user id. */
  readonly changed: ReadonlyMap<string, ChangedContact>;
  /** Checks one contact's identity key against the pin now (a warning if it changed). */
  check(userId: string): Promise<void>;
  /** Records what a refused send reported; true if err was an identity change. */
  report(err: unknown): boolean;
  /** The person accepts the contact's new identity key. */
  accept(userId: string): Promise<void>;
}

const TrustContext = createContext<Trust>({
  changed: new Map(),
  check: async () => {},
  report: () => false,
  accept: async () => {},
});

export function TrustProvider({ session, children }: { session: Session; children: ReactNode }) {
  const client = useApolloClient();
  const [changed, setChanged] = useState<ReadonlyMap<string, ChangedContact>>(new Map());

  const add = useCallback((c: ChangedContact) => setChanged((cur) => new Map(cur).set(c.userId, c)), []);
  const check = useCallback(
    async (userId: string) => {
      if (userId === session.userId) return;
      const r = await checkContactIdentity(client, session, userId).catch(() => null);
      if (r?.check === 'changed') add({ userId, username: r.username, identityKey: r.identityKey });
    },
    [client, session, add],
  );
  const report = useCallback(
    (err: unknown) => {
      const e = err instanceof Error && err.cause instanceof IdentityChangedError ? err.cause : err;
      if (!(e instanceof IdentityChangedError)) return false;
      add({ userId: e.userId, username: e.username, identityKey: e.identityKey });
      return true;
    },
    [add],
  );
  const accept = useCallback(
    async (userId: string) => {
      const c = changed.get(userId);
      if (!c) return;
      await session.store.acceptIdentity(session.userId, userId, c.identityKey);
      setChanged((cur) => {
        const next = new Map(cur);
        next.delete(userId);
        return next;
      });
    },
    [changed, session],
  );

  // Changes made while no page of this browser was open show at start-up.
  useEffect(() => {
    if (!session.identity) return;
    let live = true;
    checkPinnedContacts(client, session)
      .then((cs) => {
        if (live) for (const c of cs) add(c);
      })
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [client, session, add]);

  useSubscription(KeyChangedDocument, {
    onData: ({ data }) => {
      const ev = data.data?.keyChanged;
      if (ev?.kind === 'IDENTITY_CHANGED') void check(ev.user.id);
    },
  });

  const value = useMemo(() => ({ changed, check, report, accept }), [changed, check, report, accept]);
  return <TrustContext.Provider value={value}>{children}</TrustContext.Provider>;
}

export function useTrust(): Trust {
  return useContext(TrustContext);
}
