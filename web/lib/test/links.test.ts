// The link set-up: queries and mutations over HTTP with the bearer token,
// subscriptions over graphql-ws with {authToken} in connection_init (a real
// websocket server on a loopback port the system picks), and API errors read
// from both paths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import {
  LogoutDocument, MeDocument, MessageDeletedDocument, createQChatClient, errorCode, recipientMismatch, retryAfterSeconds, websocketUrl,
} from '../src/index.js';

interface Seen { url: string; auth: string | null; body: { operationName?: string } }

function fakeFetch(seen: Seen[], answer: (s: Seen) => Response): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const s: Seen = { url: String(input), auth: headers.get('authorization'), body: JSON.parse(String(init?.body)) as { operationName?: string } };
    seen.push(s);
    return answer(s);
  };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

test('websocket URL from the HTTP endpoint', () => {
  assert.equal(websocketUrl('https://chat.example/graphql'), 'wss://chat.example/graphql');
  assert.equal(websocketUrl('/graphql', 'http://localhost:8080/rooms/1'), 'ws://localhost:8080/graphql');
});

test('HTTP: the bearer token of the moment, none when signed out', async () => {
  const seen: Seen[] = [];
  let token: string | null = 'tok-1';
  const { client, link } = createQChatClient({
    httpUrl: 'http://qchat.test/graphql', getToken: () => token,
    fetch: fakeFetch(seen, (s) => json(s.body.operationName === 'Me' ? { data: { me: null } } : { data: { logout: true } })),
  });
  await client.query({ query: MeDocument, fetchPolicy: 'network-only' });
  await client.mutate({ mutation: LogoutDocument });
  token = null;
  await client.query({ query: MeDocument, fetchPolicy: 'network-only' });
  assert.deepEqual(seen.map((s) => [s.body.operationName, s.auth]), [['Me', 'Bearer tok-1'], ['Logout', 'Bearer tok-1'], ['Me', null]]);
  await link.dispose();
});

test('errors: codes from GraphQL errors and from a 429 body', async () => {
  const answers = [
    json({ errors: [{ message: 'too many requests', extensions: { code: 'RATE_LIMITED', retryAfter: 7 } }] }, 429),
    json({ errors: [{ message: 'stale', extensions: { code: 'BAD_USER_INPUT', staleKeyIds: ['k1'], missingUserIds: [], unexpectedUserIds: [] } }], data: null }),
    json({ errors: [{ message: 'bad', extensions: { code: 'BAD_USER_INPUT', field: 'x' } }], data: null }),
  ];
  const { client, link } = createQChatClient({ httpUrl: 'http://qchat.test/graphql', getToken: () => 't', fetch: fakeFetch([], () => answers.shift()!) });
  const fail = (): Promise<unknown> => client.query({ query: MeDocument, fetchPolicy: 'network-only' }).then(() => assert.fail('no error'), (e: unknown) => e);
  const limited = await fail();
  assert.equal(errorCode(limited), 'RATE_LIMITED');
  assert.equal(retryAfterSeconds(limited), 7);
  const stale = await fail();
  assert.deepEqual(recipientMismatch(stale), { staleKeyIds: ['k1'], missingUserIds: [], unexpectedUserIds: [] });
  assert.equal(retryAfterSeconds(stale), null);
  const bad = await fail();
  assert.equal(errorCode(bad), 'BAD_USER_INPUT');
  assert.equal(recipientMismatch(bad), null);
  assert.equal(errorCode(new Error('plain')), null);
  await link.dispose();
});

test('subscriptions: graphql-ws with {authToken} in connection_init, never HTTP', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (ps) => (ps.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) });
  t.after(() => new Promise<void>((r) => wss.close(() => r())));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const inits: unknown[] = [];
  wss.on('connection', (sock) => {
    sock.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; id?: string; payload?: unknown };
      if (m.type === 'connection_init') {
        inits.push(m.payload);
        sock.send(JSON.stringify({ type: 'connection_ack' }));
      } else if (m.type === 'subscribe') {
        sock.send(JSON.stringify({ type: 'next', id: m.id, payload: { data: { messageDeleted: `deleted-${inits.length}` } } }));
        sock.send(JSON.stringify({ type: 'complete', id: m.id }));
      }
    });
  });
  const port = (wss.address() as AddressInfo).port;
  const seen: Seen[] = [];
  let token: string | null = 'tok-ws-1';
  const { client, link } = createQChatClient({
    httpUrl: `http://127.0.0.1:${port}/graphql`, getToken: () => token, webSocketImpl: WebSocket,
    fetch: fakeFetch(seen, () => json({ data: null })), wsOptions: { retryAttempts: 0 },
  });
  const first = (): Promise<unknown> => new Promise((resolve, reject) => {
    const sub = client.subscribe({ query: MessageDeletedDocument, variables: {} }).subscribe({
      next: (r) => {
        resolve(r.data);
        sub.unsubscribe();
      },
      error: reject,
    });
  });
  assert.deepEqual(await first(), { messageDeleted: 'deleted-1' });
  // Signing in as someone else: the next connection carries the new token.
  token = 'tok-ws-2';
  await link.reconnect();
  assert.deepEqual(await first(), { messageDeleted: 'deleted-2' });
  assert.deepEqual(inits, [{ authToken: 'tok-ws-1' }, { authToken: 'tok-ws-2' }]);
  assert.equal(seen.length, 0, 'no subscription over HTTP');
  await link.dispose();
});
