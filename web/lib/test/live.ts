// The library against the real server: web/web_test.go starts the real
// handler on a loopback port (SQLite, and PostgreSQL when configured) and runs
//
//   node build/test/live.js http://127.0.0.1:PORT/graphql
//
// Two users register with keys made here, share a room, and exchange messages
// through the library: live over graphql-ws, resealed after a key rotation,
// retried safely, read back from history and a direct conversation. Prints
// {"ok":true,"checks":N} or throws.

import 'fake-indexeddb/auto';
import type { ApolloClient } from '@apollo/client';
import { WebSocket } from 'ws';
import {
  type Account, type KeyPair, type MessageFieldsFragment, type PreparedMessage, type QChatLink,
  ConversationsDocument, CreateRoomDocument, DirectMessagesDocument, JoinRoomDocument, KeyStore, LogoutDocument, MeDocument, MessageAddedDocument,
  PAGE_SIZE, RoomMessagesDocument, createKeyBackup, createQChatClient, errorCode, generateRecoveryKey, hasKeyBackup, readMessage, setAccountIdentity, IdentityChangedError, MessageByIdDocument,
  prepareMessage, randomUUID, registerAccount, restoreKeyBackup, rotateAccountKey, sendMessage, sendPrepared,
} from '../src/index.js';

const url = process.argv[2];
if (!url) throw new Error('usage: live.js GRAPHQL_URL');

let checks = 0;
async function assert_rejects(p: Promise<unknown>, message: string): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  check(err instanceof Error && err.message === message, `rejects with "${message}" (got ${String(err)})`);
}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`live: ${what}`);
  checks++;
}

interface Person {
  name: string;
  id: string;
  client: ApolloClient;
  link: QChatLink;
  ring: Map<string, KeyPair>;
  session: { token: string | null };
  account: Account;
}

async function register(name: string, algorithm: 'ML_KEM_768' | 'X_WING'): Promise<Person> {
  const session: { token: string | null } = { token: null };
  const { client, link } = createQChatClient({ httpUrl: url!, getToken: () => session.token, webSocketImpl: WebSocket, wsOptions: { retryAttempts: 0 } });
  const username = `${name}_${randomUUID().slice(0, 8)}`;
  const store = await KeyStore.open(`live-${username}`);
  const reg = await registerAccount(client, store, { username, password: 'correct horse battery', algorithm });
  session.token = reg.token;
  const me = await client.query({ query: MeDocument, fetchPolicy: 'network-only' });
  check(me.data?.me?.id === reg.user.id, `${name}: Me with the bearer token`);
  check(me.data?.me?.identityKey !== null && me.data?.me?.publicKey?.seq === 1 && me.data.me.publicKey.signature !== null, `${name}: registered with an identity key and a certified key (seq 1)`);
  const account: Account = { userId: reg.user.id, store, identity: await store.getIdentity(reg.user.id) };
  return { name, id: reg.user.id, client, link, ring: await store.keyRing(reg.user.id), session, account };
}

// Opened with the sender's identity key as pinned: every message here is signed.
const open = async (p: Person, m: MessageFieldsFragment): Promise<string> => {
  const o = await readMessage(p.client, p.account, m, (kid) => p.ring.get(kid));
  check(o.verified && m.version === 2, `${p.name}: message ${m.id} is signed and verified`);
  return o.text;
};

const alice = await register('alice', 'ML_KEM_768');
const bob = await register('bob', 'X_WING');

const { data: created } = await alice.client.mutate({ mutation: CreateRoomDocument, variables: { input: { name: 'library live test', isGroup: true } } });
const room = created?.createRoom;
if (!room) throw new Error('createRoom: no room');
await bob.client.mutate({ mutation: JoinRoomDocument, variables: { code: room.code } });
const conv = { roomId: room.id };

// Bob listens over graphql-ws (authenticated by connection_init).
const live: MessageFieldsFragment[] = [];
let arrived: (() => void) | null = null;
const sub = bob.client.subscribe({ query: MessageAddedDocument, variables: { roomId: room.id }, fetchPolicy: 'no-cache' }).subscribe({
  next: (r) => {
    if (r.data) live.push(r.data.messageAdded);
    arrived?.();
  },
  error: (e: unknown) => {
    console.error('subscription error', e);
    process.exit(1);
  },
});
const nextLive = (id: string, deadlineMs: number): Promise<boolean> => new Promise((resolve) => {
  const done = () => {
    if (live.some((m) => m.id === id)) {
      clearTimeout(timer);
      arrived = null;
      resolve(true);
    }
  };
  const timer = setTimeout(() => {
    arrived = null;
    resolve(false);
  }, deadlineMs);
  arrived = done;
  done();
});

// Delivery is at most once and a subscription is live only once the server
// has registered it, which the protocol does not announce: probe until one
// message arrives (the overall bound is only a safety net).
let isLive = false;
for (let i = 0; i < 50 && !isLive; i++) {
  const probe = await sendMessage(alice.client, alice.account, conv, `probe ${i}`);
  isLive = await nextLive(probe.id, 200);
}
check(isLive, 'bob\'s subscription became live');

const hello = await sendMessage(alice.client, alice.account, conv, 'hello bob ✓ <b>not html</b>');
check(await nextLive(hello.id, 10_000), 'bob receives the message live');
check(await open(bob, live.find((m) => m.id === hello.id)!) === 'hello bob ✓ <b>not html</b>', 'bob opens the live message');
check(await open(alice, hello) === 'hello bob ✓ <b>not html</b>', 'alice opens her own message');

// Bob backs his keys up with a recovery key.
const recoveryKey = generateRecoveryKey();
await createKeyBackup(bob.client, bob.account.store, bob.id, recoveryKey);
check(await hasKeyBackup(bob.client), 'bob has a key backup');

// Bob rotates his key (certified with seq 2) between alice's key fetch and
// her send: the server answers staleKeyIds, and the library checks the new
// certificate and seals again under the same id.
const prepared = await prepareMessage(alice.client, alice.account, conv, 'after the rotation');
const rotated = await rotateAccountKey(bob.client, bob.account.store);
const newKeyId = rotated.publicKey?.id;
if (!newKeyId) throw new Error('rotateKey: no key');
check(rotated.publicKey?.seq === 2, 'the rotated key has seq 2');
bob.ring = await bob.account.store.keyRing(bob.id);
let latest: PreparedMessage = prepared;
const afterRotation = await sendPrepared(alice.client, alice.account, prepared, { onResealed: (p) => (latest = p) });
check(latest !== prepared && afterRotation.id === prepared.id, 'stale key: resealed under the same id');
check(await nextLive(afterRotation.id, 10_000), 'bob receives the resealed message live');
const liveRotated = live.find((m) => m.id === afterRotation.id)!;
check(liveRotated.myKey?.keyId === newKeyId, 'sealed to bob\'s new key');
check(await open(bob, liveRotated) === 'after the rotation', 'bob opens it with his new key');

// The same prepared message sent twice is one message.
const once = await prepareMessage(alice.client, alice.account, conv, 'exactly once');
const first = await sendPrepared(alice.client, alice.account, once);
const again = await sendPrepared(alice.client, alice.account, once);
check(first.id === again.id && first.ciphertext === again.ciphertext, 'a retry answers with the stored message');

// History, newest first, opens with every key bob ever had.
const { data: hist } = await bob.client.query({ query: RoomMessagesDocument, variables: { roomId: room.id, first: PAGE_SIZE.messages }, fetchPolicy: 'network-only' });
const history = hist?.room?.messages.edges.map((e) => e.node) ?? [];
check(history.filter((m) => m.id === once.id).length === 1, 'the retried message is stored once');
const texts = await Promise.all(history.map((m) => open(bob, m)));
check(texts.includes('hello bob ✓ <b>not html</b>') && texts.includes('after the rotation') && texts.includes('exactly once'), 'bob opens the whole history, before and after his rotation');

// Bob on a new device: the backup (resealed by the rotation) restores both keys.
const device = await KeyStore.open(`live-${bob.id}-new-device`);
await restoreKeyBackup(bob.client, device, bob.id, recoveryKey);
const restored = await device.keyRing(bob.id);
check(restored.size === 2 && restored.has(newKeyId), 'the backup holds the key from before and after the rotation');
const restoredAccount: Account = { userId: bob.id, store: device, identity: await device.getIdentity(bob.id) };
const restoredTexts = await Promise.all(history.map(async (m) => (await readMessage(bob.client, restoredAccount, m, (kid) => restored.get(kid))).text));
check(restoredTexts.includes('hello bob ✓ <b>not html</b>') && restoredTexts.includes('after the rotation'), 'the new device opens the whole history');
await assert_rejects(restoreKeyBackup(bob.client, device, bob.id, generateRecoveryKey()), 'cannot open key backup');

const { data: convs } = await bob.client.query({ query: ConversationsDocument, variables: { first: PAGE_SIZE.conversations }, fetchPolicy: 'network-only' });
check(convs?.conversations.edges.some((e) => e.node.room?.id === room.id && e.node.lastMessage?.id === once.id) === true, 'Conversations within the complexity limit, newest message last');

// A direct conversation.
const dm = await sendMessage(bob.client, bob.account, { userId: alice.id }, 'direct hello');
const { data: dms } = await alice.client.query({ query: DirectMessagesDocument, variables: { withUserId: bob.id, first: PAGE_SIZE.messages }, fetchPolicy: 'network-only' });
const got = dms?.directMessages.edges.find((e) => e.node.id === dm.id)?.node;
check(got !== undefined && (await open(alice, got)) === 'direct hello', 'alice opens bob\'s direct message');

// Bob starts over on a device without a backup: a new identity key (his
// password needed). Alice's next send to him is refused, naming him, until
// she accepts the new key; then he reads it, signed and verified.
const fresh = await KeyStore.open(`live-${bob.id}-start-over`);
const noPassword = await setAccountIdentity(bob.client, fresh).then(() => null, (e: unknown) => e);
check(errorCode(noPassword) !== null, `replacing an identity key without the password is refused (got ${String(noPassword)})`);
await setAccountIdentity(bob.client, fresh, { password: 'correct horse battery' });
const refused = await sendMessage(alice.client, alice.account, { userId: bob.id }, 'to the old bob').then(() => null, (e: unknown) => e);
check(refused instanceof IdentityChangedError && refused.userId === bob.id, `an identity change is refused until accepted (got ${String(refused)})`);
if (!(refused instanceof IdentityChangedError)) throw new Error('unreachable');
await alice.account.store.acceptIdentity(alice.id, bob.id, refused.identityKey);
const welcome = await sendMessage(alice.client, alice.account, { userId: bob.id }, 'welcome back');
const { data: wb } = await bob.client.query({ query: MessageByIdDocument, variables: { id: welcome.id }, fetchPolicy: 'network-only' });
const freshRing = await fresh.keyRing(bob.id);
const freshAccount: Account = { userId: bob.id, store: fresh, identity: await fresh.getIdentity(bob.id) };
const readBack = wb?.message ? await readMessage(bob.client, freshAccount, wb.message, (kid) => freshRing.get(kid)) : null;
check(readBack?.text === 'welcome back' && readBack.verified, 'bob reads it with his new keys');

// API errors come back with their code.
const bad = await bob.client.mutate({ mutation: JoinRoomDocument, variables: { code: 'zzzzzzzz' } }).then(() => null, (e: unknown) => e);
check(errorCode(bad) === 'NOT_FOUND', `a wrong invite code is NOT_FOUND (got ${errorCode(bad)})`);

// Signing out ends the session; the websocket closes with reconnect().
sub.unsubscribe();
await alice.client.mutate({ mutation: LogoutDocument });
const stale = alice.session.token;
alice.session.token = null;
await alice.link.reconnect();
alice.session.token = stale;
const after = await alice.client.query({ query: MeDocument, fetchPolicy: 'network-only' });
check(after.data?.me === null, 'the token is dead after logout');

await alice.link.dispose();
await bob.link.dispose();
console.log(JSON.stringify({ ok: true, checks }));
