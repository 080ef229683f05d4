// Apollo Client's link for QChat: queries and mutations over HTTP with the
// bearer token, subscriptions over graphql-ws with the token in
// connection_init ({authToken}), split by operation type (PROTOCOL.md §10).

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { type Client, type ClientOptions, createClient } from 'graphql-ws';

export interface QChatLinkOptions {
  /** The GraphQL endpoint, e.g. '/graphql' or 'https://chat.example/graphql'. */
  readonly httpUrl: string;
  /** The websocket endpoint; by default httpUrl with ws(s): (resolved against baseUrl when relative). */
  readonly wsUrl?: string;
  /** Where a relative httpUrl is resolved for the websocket: the page's location in a browser. */
  readonly baseUrl?: string;
  /** The session token, read for every request and every (re)connection; null when signed out. */
  readonly getToken: () => string | null;
  /** fetch for HTTP (the global one by default). */
  readonly fetch?: typeof fetch;
  /** A WebSocket implementation where there is no global one (Node 20: the ws package). */
  readonly webSocketImpl?: unknown;
  /** More graphql-ws options (retries, event listeners); url and connectionParams are set here. */
  readonly wsOptions?: Omit<ClientOptions, 'url' | 'connectionParams' | 'webSocketImpl'>;
}

/** The link and a handle on its websocket. */
export interface QChatLink {
  readonly link: ApolloLink;
  /**
   * Closes the websocket after the token changed (sign-in, sign-out): its
   * subscriptions end, and the next subscription connects with the new token.
   */
  reconnect(): Promise<void>;
  /** Closes the websocket for good. */
  dispose(): Promise<void>;
}

/** The websocket URL of an HTTP endpoint: http → ws, https → wss. */
export function websocketUrl(httpUrl: string, baseUrl?: string): string {
  const u = new URL(httpUrl, baseUrl ?? (globalThis as { location?: { href: string } }).location?.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** The bearer header of a token, or nothing when signed out. */
export function authHeaders(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

export function createQChatLink(opts: QChatLinkOptions): QChatLink {
  const http = new HttpLink({ uri: opts.httpUrl, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  const auth = new SetContextLink((prev) => ({ headers: { ...(prev['headers'] as Record<string, string> | undefined), ...authHeaders(opts.getToken()) } }));
  const url = opts.wsUrl ?? websocketUrl(opts.httpUrl, opts.baseUrl);

  let ws: { client: Client; link: GraphQLWsLink } | null = null;
  const current = (): GraphQLWsLink => {
    if (!ws) {
      const client = createClient({
        ...opts.wsOptions,
        url,
        // Evaluated at every connection, so a reconnection carries the token of the moment.
        connectionParams: () => {
          const token = opts.getToken();
          return token ? { authToken: token } : {};
        },
        ...(opts.webSocketImpl !== undefined ? { webSocketImpl: opts.webSocketImpl } : {}),
      });
      ws = { client, link: new GraphQLWsLink(client) };
    }
    return ws.link;
  };
  const close = async (): Promise<void> => {
    const old = ws;
    ws = null;
    if (old) await old.client.dispose();
  };
  const subscriptions = new ApolloLink((op) => current().request(op));
  const link = ApolloLink.split((op) => op.operationType === OperationTypeNode.SUBSCRIPTION, subscriptions, ApolloLink.from([auth, http]));
  return { link, reconnect: close, dispose: close };
}

/** An Apollo Client on a QChat link, with the cache normalised by id. */
export function createQChatClient(opts: QChatLinkOptions): { client: ApolloClient; link: QChatLink } {
  const link = createQChatLink(opts);
  const client = new ApolloClient({
    link: link.link,
    cache: new InMemoryCache({
      typePolicies: {
        // Conversations and a room's members have no id of their own.
        Conversation: { keyFields: false },
        RoomMember: { keyFields: false },
        RecipientKey: { keyFields: false },
      },
    }),
  });
  return { client, link };
}
