// The Apollo Client of the app: @qchat/client's link (HTTP with the bearer
// token, graphql-ws with it in connection_init) and a cache normalised by id,
// whose message pages merge, so that older pages append and live messages
// (from the subscription or a send) are written into the cache, not into
// component state.

import { ApolloClient, type ApolloCache, InMemoryCache, type FieldPolicy, type Reference } from '@apollo/client';
import { type MessageFieldsFragment, MessageFieldsFragmentDoc, type QChatLink, createQChatLink } from '@qchat/client';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting';

export interface Api {
  readonly client: ApolloClient;
  readonly link: QChatLink;
  connection(): ConnectionState;
  onConnection(listener: (s: ConnectionState) => void): () => void;
}

interface Edge {
  readonly __typename?: string;
  readonly node: Reference;
}
interface Page {
  readonly edges: readonly Edge[];
  readonly pageInfo: unknown;
}

// A message page field (newest first): a page with `after` goes after what is
// there; a first page (a refetch) goes before it, without duplicates.
function pagePolicy(keyArgs: string[] | false): FieldPolicy<Page> {
  return {
    keyArgs,
    merge(existing, incoming, { args, readField }) {
      if (!existing) return incoming;
      const id = (e: Edge) => readField<string>('id', e.node);
      if (args?.['after']) {
        const have = new Set(existing.edges.map(id));
        return { ...incoming, edges: [...existing.edges, ...incoming.edges.filter((e) => !have.has(id(e)))] };
      }
      const have = new Set(incoming.edges.map(id));
      const rest = existing.edges.filter((e) => !have.has(id(e)));
      return { ...incoming, edges: [...incoming.edges, ...rest], pageInfo: rest.length > 0 ? existing.pageInfo : incoming.pageInfo };
    },
  };
}

export function createApi(getToken: () => string | null): Api {
  let state: ConnectionState = 'idle';
  const listeners = new Set<(s: ConnectionState) => void>();
  const set = (s: ConnectionState) => {
    state = s;
    for (const l of listeners) l(s);
  };
  const link = createQChatLink({
    httpUrl: '/graphql',
    getToken,
    wsOptions: {
      // A chat keeps trying: the banner tells the person it is reconnecting.
      retryAttempts: Number.MAX_SAFE_INTEGER,
      shouldRetry: () => true,
      on: {
        connecting: (isRetry: boolean) => set(isRetry ? 'reconnecting' : 'connecting'),
        connected: () => set('connected'),
        closed: (event: unknown) => {
          const code = (event as { code?: number } | null)?.code;
          set(code === 1000 || state === 'idle' ? 'idle' : 'reconnecting');
        },
      },
    },
  });
  const client = new ApolloClient({
    link: link.link,
    cache: new InMemoryCache({
      typePolicies: {
        Conversation: { keyFields: false },
        RoomMember: { keyFields: false },
        RecipientKey: { keyFields: false },
        Room: { fields: { messages: pagePolicy(false), documentsConnection: pagePolicy(false) } },
        Query: { fields: { directMessages: pagePolicy(['withUserId']) } },
      },
    }),
  });
  return {
    client,
    link,
    connection: () => state,
    onConnection(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/** The other side of a direct message, seen from selfId. */
export function directPeer(m: MessageFieldsFragment, selfId: string): { id: string; username: string } | null {
  if (m.room || !m.recipient) return null;
  return m.sender.id === selfId ? m.recipient : m.sender;
}

/**
 * Writes a message (sent, or received live) into the cache, at the head of its
 * conversation's loaded pages. A conversation never opened has no pages; its
 * query loads the message when it opens.
 */
export function addMessage(cache: ApolloCache, selfId: string, m: MessageFieldsFragment): void {
  const ref = cache.writeFragment({ fragment: MessageFieldsFragmentDoc, fragmentName: 'MessageFields', data: m });
  if (!ref) return;
  const prepend = (existing: Page | undefined, readField: (f: string, r: Reference) => unknown): Page | undefined => {
    if (!existing || existing.edges.some((e) => readField('id', e.node) === m.id)) return existing;
    return { ...existing, edges: [{ __typename: 'MessageEdge', node: ref }, ...existing.edges] };
  };
  if (m.room) {
    const id = cache.identify({ __typename: 'Room', id: m.room.id });
    if (!id) return;
    cache.modify<Record<string, unknown>>({
      id,
      fields: {
        messages: (existing, { readField }) => prepend(existing as Page | undefined, (f, r) => readField(f, r)) as never,
      },
    });
    return;
  }
  const peer = directPeer(m, selfId);
  if (!peer) return;
  // The store name of directMessages(withUserId: peer) under its keyArgs.
  const field = `directMessages:${JSON.stringify({ withUserId: peer.id })}`;
  cache.modify<Record<string, unknown>>({
    fields: {
      directMessages: (existing, { storeFieldName, readField }) =>
        (storeFieldName === field ? prepend(existing as Page | undefined, (f, r) => readField(f, r)) : existing) as never,
    },
  });
}

/** Marks a message deleted in the cache (a tombstone: its text is gone for everyone). */
export function markDeleted(cache: ApolloCache, id: string): void {
  const ref = cache.identify({ __typename: 'Message', id });
  if (ref) cache.modify({ id: ref, fields: { deleted: () => true } });
}

/**
 * Forgets a deleted document: gone from its room's document list, and every
 * message that shared it keeps its attachmentId (it is signed) but has no
 * attachment any more, as the server now answers.
 */
export function forgetDocument(cache: ApolloCache, id: string): void {
  const docRef = cache.identify({ __typename: 'Document', id });
  if (!docRef) return;
  for (const [key, obj] of Object.entries(cache.extract() as Record<string, Record<string, unknown> | undefined>)) {
    if (key.startsWith('Message:') && (obj?.['attachment'] as Reference | null | undefined)?.__ref === docRef) {
      cache.modify({ id: key, fields: { attachment: () => null } });
    }
    if (key.startsWith('Room:')) {
      cache.modify<Record<string, unknown>>({
        id: key,
        fields: {
          documentsConnection: (existing, { readField }) => {
            const page = existing as Page | undefined;
            if (!page?.edges) return existing as never;
            return { ...page, edges: page.edges.filter((e) => readField('id', e.node) !== id) } as never;
          },
        },
      });
    }
  }
  cache.evict({ id: docRef });
  cache.gc();
}
