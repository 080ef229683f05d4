// A QChat client written only from docs/PROTOCOL.md and docs/PROTOCOL-V2.md (the
// API contract and the sealed envelope, versions 1 and 2): Apollo Client (HttpLink +
// GraphQLWsLink over graphql-ws) in Node, three users with ML-DSA-65 identity keys
// and certified KEM keys, pinned on first use and checked before every seal, rooms,
// sealed and signed messages and documents that every member verifies and opens (and
// refuses when tampered with), every live event, history paging, key
// rotation and an identity reset with their keyChanged events, safety numbers, a key
// backup restored on a new device, the contract's error codes for misuse, and the
// legacy subscriptions-transport-ws protocol on a raw socket.
//
//   node scenario.mjs http://127.0.0.1:8080/graphql
//
// Progress goes to stderr. On success the last stdout line is
//   {"ok":true,"plaintexts":[...],"secrets":[...],"secretKeys":[...],"usernames":[...]}
// (every plaintext sealed, every password used, every secret-key seed in base64,
// and the usernames, which are stored in clear), which the Go test uses to scan
// the database. Any failure exits 1 with
// a message naming the step, the request and the response.

globalThis[Symbol.for('apollo.deprecations')] = true; // Apollo 3.14's v4 migration warnings

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, split } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { getMainDefinition } from '@apollo/client/utilities/index.js';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { randomUUID, randomBytes } from 'node:crypto';
import {
  b64, unb64, fingerprint, generateKeyPair, keyPairFromSeed, sealSigned, signEnvelope, openSigned, openSignedBytes, CannotOpenError,
  generateIdentity, identityFromSeed, certifyKEMKey, verifyKEMKeyCertificate, safetyNumber, formatSafetyNumber,
  backupPlaintext, sealBackup, openBackup, CannotOpenBackupError, passphraseLongEnough,
} from './envelope.mjs';

const HTTP_URL = process.argv[2];
if (!HTTP_URL || !/^https?:\/\//.test(HTTP_URL)) {
  console.error('usage: node scenario.mjs http://HOST:PORT/graphql');
  process.exit(2);
}
const WS_URL = HTTP_URL.replace(/^http/, 'ws');
const WAIT_MS = Number(process.env.QCHAT_E2E_WAIT_MS ?? 10000); // bound on every single wait
const TOTAL_MS = Number(process.env.QCHAT_E2E_TOTAL_MS ?? 100000); // bound on the whole run

// ---- failure handling ----------------------------------------------------------------

let step = 'start';
const t0 = Date.now();
function log(...a) {
  console.error(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${a.join(' ')}`);
}
function section(name) {
  step = name;
  log(`== ${name}`);
}
class ScenarioError extends Error {}
function fail(msg) {
  throw new ScenarioError(`step "${step}": ${msg}`);
}
function assert(cond, msg) {
  if (!cond) fail(msg);
}
// Canonical JSON: object keys sorted, Apollo's __typename left out.
const canon = (x) => JSON.stringify(x, (k, v) =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).filter((key) => key !== '__typename').sort().map((key) => [key, v[key]]))
    : v);
function assertEq(got, want, what) {
  const g = canon(got);
  const w = canon(want);
  if (g !== w) fail(`${what}: got ${g}, want ${w}`);
}
const show = (x) => JSON.stringify(x, null, 0)?.slice(0, 2000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const watchdog = setTimeout(() => {
  console.error(`scenario: FAILED: step "${step}": the whole run took more than ${TOTAL_MS} ms`);
  process.exit(1);
}, TOTAL_MS);

async function waitUntil(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(15);
  }
}

// ---- GraphQL documents (contract names, and the paged extensions a client needs) -----
// Room.members is capped at the maximum room size and priced by it, so a
// selection of members with their keys is over the complexity limit: the
// members come a page at a time from membersConnection (an extension).

const USER = `id username online createdAt publicKey { id algorithm key fingerprint createdAt signature seq }
  identityKey { key fingerprint createdAt }`;
const MSG = `id sender { id username } room { id } recipient { id } ciphertext nonce createdAt deleted
  version signature keyDigests attachmentId myKey { userId keyId kemCiphertext wrappedKey readAt }`;
const DOC = `id name mimeType size nonce createdAt downloadUrl uploader { id } room { id } recipient { id }
  version signature keyDigests myKey { userId keyId kemCiphertext wrappedKey readAt }`;
const MEMBER_PAGE = `edges { cursor node { role joinedAt user { ${USER} } } } pageInfo { hasNextPage endCursor }`;
const ROOM = `id name isGroup code memberCount createdAt owner { id }
  membersConnection(first: 50) { ${MEMBER_PAGE} }`;

const Q = {
  register: gql`mutation Register($input: RegisterInput!) { register(input: $input) { token expiresAt user { ${USER} } } }`,
  login: gql`mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt user { id } } }`,
  me: gql`query Me { me { ${USER} } }`,
  user: gql`query User($id: ID!) { user(id: $id) { ${USER} } }`,
  users: gql`query Users($ids: [ID!]!) { users(ids: $ids) { ${USER} } }`,
  userByUsername: gql`query UserByUsername($u: String!) { userByUsername(username: $u) { id username } }`,
  rotateKey: gql`mutation RotateKey($pk: String!, $alg: KeyAlgorithm, $seq: Int!, $sig: String!) {
    rotateKey(publicKey: $pk, algorithm: $alg, seq: $seq, signature: $sig) { ${USER} } }`,
  setIdentityKey: gql`mutation SetIdentityKey($ik: String!, $pk: String!, $alg: KeyAlgorithm, $seq: Int!, $sig: String!, $password: String) {
    setIdentityKey(identityKey: $ik, publicKey: $pk, algorithm: $alg, seq: $seq, signature: $sig, password: $password) { ${USER} } }`,
  setKeyBackup: gql`mutation SetKeyBackup($b: String!) { setKeyBackup(backup: $b) }`,
  deleteKeyBackup: gql`mutation DeleteKeyBackup { deleteKeyBackup }`,
  keyBackup: gql`query KeyBackup { keyBackup }`,
  createRoom: gql`mutation CreateRoom($input: CreateRoomInput!) { createRoom(input: $input) { ${ROOM} } }`,
  roomPreview: gql`query RoomPreview($code: String!) { roomPreview(code: $code) { id name isGroup memberCount } }`,
  joinRoom: gql`mutation JoinRoom($code: String!) { joinRoom(code: $code) { ${ROOM} } }`,
  addRoomMember: gql`mutation AddRoomMember($r: ID!, $u: ID!) { addRoomMember(roomId: $r, userId: $u) { ${ROOM} } }`,
  updateRoom: gql`mutation UpdateRoom($r: ID!, $name: String!) { updateRoom(roomId: $r, name: $name) { id name } }`,
  rotateRoomCode: gql`mutation RotateRoomCode($r: ID!) { rotateRoomCode(roomId: $r) { id code } }`,
  leaveRoom: gql`mutation LeaveRoom($r: ID!) { leaveRoom(roomId: $r) }`,
  deleteRoom: gql`mutation DeleteRoom($r: ID!) { deleteRoom(roomId: $r) }`,
  room: gql`query Room($id: ID!) { room(id: $id) { ${ROOM} } }`,
  myRooms: gql`query MyRooms { myRooms { id name memberCount } }`,
  roomMembers: gql`query RoomMembers($id: ID!, $first: Int, $after: String) {
    room(id: $id) { id membersConnection(first: $first, after: $after) { ${MEMBER_PAGE} } } }`,
  conversations: gql`query Conversations($first: Int, $after: String) {
    conversations(first: $first, after: $after) { edges { cursor node { unreadCount lastActivityAt room { id } user { id } } } pageInfo { hasNextPage endCursor } } }`,
  roomPage: gql`query RoomPage($id: ID!, $first: Int, $after: String) {
    room(id: $id) { id messages(first: $first, after: $after) { edges { cursor node { ${MSG} } } pageInfo { hasNextPage endCursor } } } }`,
  dmPage: gql`query DMPage($with: ID!, $first: Int, $after: String) {
    directMessages(withUserId: $with, first: $first, after: $after) { edges { cursor node { ${MSG} } } pageInfo { hasNextPage endCursor } } }`,
  sendMessage: gql`mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { ${MSG} } }`,
  uploadDocument: gql`mutation UploadDocument($input: UploadDocumentInput!) { uploadDocument(input: $input) { ${DOC} } }`,
  document: gql`query Document($id: ID!) { document(id: $id) { ${DOC} } }`,
  deleteDocument: gql`mutation DeleteDocument($id: ID!) { deleteDocument(id: $id) }`,
  deleteMessage: gql`mutation DeleteMessage($id: ID!) { deleteMessage(id: $id) }`,
  markRead: gql`mutation MarkRead($ids: [ID!]!) { markRead(messageIds: $ids) }`,
  setTyping: gql`mutation SetTyping($r: ID, $to: ID, $t: Boolean!) { setTyping(roomId: $r, recipientId: $to, isTyping: $t) }`,
  // subscriptions
  messageAdded: gql`subscription MessageAdded { messageAdded { ${MSG} } }`,
  messageDeleted: gql`subscription MessageDeleted { messageDeleted }`,
  typing: gql`subscription Typing { typing { user { id username } roomId recipientId isTyping } }`,
  readReceipts: gql`subscription ReadReceipts { readReceipts { messageId readAt user { id username } } }`,
  roomEvents: gql`subscription RoomEvents { roomEvents { type room { id name } user { id username } } }`,
  presence: gql`subscription Presence { presence { online user { id username } } }`,
  keyChanged: gql`subscription KeyChanged { keyChanged { kind user { ${USER} } } }`,
};
const SUBSCRIPTIONS = ['messageAdded', 'messageDeleted', 'readReceipts', 'roomEvents', 'presence', 'typing', 'keyChanged'];

// ---- Apollo plumbing -----------------------------------------------------------------

// Runs one operation over HTTP and returns {data, errors}, whatever the HTTP status.
async function call(client, doc, variables = {}) {
  const def = getMainDefinition(doc);
  const opts = { variables, fetchPolicy: 'no-cache', errorPolicy: 'all' };
  try {
    const r = def.operation === 'query' ? await client.query({ query: doc, ...opts }) : await client.mutate({ mutation: doc, ...opts });
    return { data: r.data ?? null, errors: r.errors ?? [] };
  } catch (e) {
    const errs = e?.graphQLErrors?.length ? e.graphQLErrors : e?.networkError?.result?.errors;
    if (errs?.length) return { data: e?.networkError?.result?.data ?? null, errors: errs, status: e?.networkError?.statusCode };
    fail(`${def.name?.value}: transport failure: ${e?.message ?? e} ${show(e?.networkError?.result ?? '')}`);
  }
}

function opName(doc) {
  return getMainDefinition(doc).name?.value;
}

// ok: the operation must succeed; returns data.
async function ok(client, doc, variables) {
  const r = await call(client, doc, variables);
  if (r.errors.length) fail(`${opName(doc)}(${show(variables)}) failed: ${show(r.errors)}`);
  return r.data;
}

// misuse: the operation must fail with errors[0].extensions.code === code; returns errors[0].
const misuseResults = [];
async function misuse(what, client, doc, variables, code) {
  const r = await call(client, doc, variables);
  const e = r.errors[0];
  if (!e) fail(`${what}: ${opName(doc)} succeeded (${show(r.data)}), want error code ${code}`);
  if (e.extensions?.code !== code) fail(`${what}: ${opName(doc)}(${show(variables)}) answered ${show(r.errors)}, want extensions.code ${code}`);
  misuseResults.push({ what, code });
  log(`   misuse ok: ${what} -> ${code} (${e.message})`);
  return e;
}

// misuseField: BAD_USER_INPUT naming field in extensions.field (the v2 contract).
async function misuseField(what, client, doc, variables, field) {
  const e = await misuse(what, client, doc, variables, 'BAD_USER_INPUT');
  if (e.extensions?.field !== field) fail(`${what}: extensions.field is ${show(e.extensions?.field)}, want ${field}: ${show(e)}`);
  return e;
}

// misuseRequired: a value the contract requires is left out. While the schema still
// has it nullable (the v2 transition) the server answers BAD_USER_INPUT naming the
// field; once it is required, GraphQL itself refuses the request
// (GRAPHQL_VALIDATION_FAILED naming it). Either way nothing is stored.
async function misuseRequired(what, client, doc, variables, field) {
  const r = await call(client, doc, variables);
  const e = r.errors[0];
  if (!e) fail(`${what}: ${opName(doc)} succeeded (${show(r.data)}), want it refused for the missing ${field}`);
  const named = e.extensions?.code === 'BAD_USER_INPUT' ? e.extensions.field === field
    : e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' && (e.message.includes(field) || (e.path ?? []).includes(field));
  if (!named) fail(`${what}: ${opName(doc)} answered ${show(r.errors)}, want BAD_USER_INPUT naming ${field} or GRAPHQL_VALIDATION_FAILED about it`);
  misuseResults.push({ what, code: e.extensions.code });
  log(`   misuse ok: ${what} -> ${e.extensions.code} (${e.message})`);
  return e;
}

// refused: the client itself must refuse (f throws an instance of cls): a certificate
// or signature that does not verify, an unpinned identity, a backup that does not open.
const clientRefusals = [];
async function refused(what, cls, f) {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof cls)) throw e;
    clientRefusals.push(what);
    log(`   refused ok: ${what} (${e.message})`);
    return e;
  }
  fail(`${what}: the client accepted it`);
}

const httpClient = (token) =>
  new HttpLink({ uri: HTTP_URL, headers: token ? { Authorization: `Bearer ${token}` } : {} });

function apollo(link) {
  return new ApolloClient({
    link,
    cache: new InMemoryCache(),
    defaultOptions: {
      query: { fetchPolicy: 'no-cache', errorPolicy: 'all' },
      mutate: { fetchPolicy: 'no-cache', errorPolicy: 'all' },
      watchQuery: { fetchPolicy: 'no-cache', errorPolicy: 'all' },
    },
  });
}

const anon = apollo(httpClient(null));

// ---- pinning (PROTOCOL-V2.md §2, §4) ------------------------------------------------------

// KeyRefusedError: the client will not seal to this user's key (no identity key, a
// certificate that does not verify, an old or conflicting seq).
class KeyRefusedError extends Error {}
// IdentityChangedError: the server presents another identity key than the pinned one;
// nothing is sealed to the user until the change is accepted.
class IdentityChangedError extends KeyRefusedError {}
// UnverifiedError: version 1 content, which a client never shows under its sender's
// name (PROTOCOL-V2.md §3.7); everything this scenario sends is version 2.
class UnverifiedError extends Error {}

// Pins is one client's memory of other users' keys: the identity key seen first (trust
// on first use), the highest certificate seq seen and the key of every seq.
class Pins {
  constructor(owner) {
    this.owner = owner;
    this.users = new Map(); // userId -> {identityKey (base64), maxSeq, bySeq: Map(seq -> key base64), pending}
  }

  // pin returns the pin of user (an API User with identityKey), pinning on first use.
  pin(user) {
    const ik = user.identityKey;
    if (!ik) throw new KeyRefusedError(`${user.username} has no identity key yet: cannot seal to them`);
    if (fingerprint(unb64(ik.key)) !== ik.fingerprint) throw new KeyRefusedError(`${user.username}'s identity key fingerprint does not match the key`);
    let p = this.users.get(user.id);
    if (!p) {
      p = { identityKey: ik.key, maxSeq: 0, bySeq: new Map(), pending: null };
      this.users.set(user.id, p);
    }
    if (p.identityKey !== ik.key) {
      p.pending = ik.key;
      throw new IdentityChangedError(`WARNING: ${user.username}'s identity key changed (now ${ik.fingerprint}): compare safety numbers, then accept it`);
    }
    return p;
  }

  // accept makes the pending identity key of userId the pinned one (the user compared safety numbers).
  accept(userId) {
    const p = this.users.get(userId);
    assert(p?.pending, `${this.owner}: no identity change of ${userId} to accept`);
    p.identityKey = p.pending;
    p.pending = null;
  }

  identityKey(userId) {
    const p = this.users.get(userId);
    return p && unb64(p.identityKey);
  }

  // checkKey verifies user's current KEM key against the pinned identity key and the
  // seq rules; it throws KeyRefusedError, or returns the recipient to seal to.
  checkKey(user) {
    const p = this.pin(user);
    const k = user.publicKey;
    if (!k) throw new KeyRefusedError(`${user.username} has no public key`);
    if (fingerprint(unb64(k.key)) !== k.fingerprint) throw new KeyRefusedError(`${user.username}'s key ${k.id}: fingerprint does not match the key`);
    if (k.signature == null || k.seq == null) throw new KeyRefusedError(`${user.username}'s key ${k.id} has no certificate`);
    if (!verifyKEMKeyCertificate(unb64(p.identityKey), k.algorithm, k.seq, unb64(k.key), unb64(k.signature))) {
      throw new KeyRefusedError(`${user.username}'s key ${k.id}: the certificate does not verify against the pinned identity key`);
    }
    if (k.seq < p.maxSeq) throw new KeyRefusedError(`${user.username}'s key ${k.id}: seq ${k.seq} is older than seq ${p.maxSeq} already seen`);
    const seen = p.bySeq.get(k.seq);
    if (seen && seen !== k.key) throw new KeyRefusedError(`${user.username}'s key ${k.id}: another key with the same seq ${k.seq} was seen`);
    p.bySeq.set(k.seq, k.key);
    p.maxSeq = Math.max(p.maxSeq, k.seq);
    return { userId: user.id, keyId: k.id, algorithm: k.algorithm, publicKey: unb64(k.key) };
  }
}

// ---- users ---------------------------------------------------------------------------

const RUN = randomBytes(3).toString('hex');
const plaintexts = [];
const secrets = [];
const secretKeys = [];

class Person {
  // newDeviceOf: the same account on a new device, which has no keys until it
  // restores them from the backup.
  constructor(name, algorithm, newDeviceOf = null) {
    this.name = name;
    this.pins = new Pins(name);
    this.keyring = new Map(); // keyId -> {algorithm, publicKey, seed}
    this.ev = Object.fromEntries(SUBSCRIPTIONS.map((s) => [s, []]));
    this.subErrors = [];
    this.connections = 0;
    if (newDeviceOf) {
      this.username = newDeviceOf.username;
      this.password = newDeviceOf.password;
      return;
    }
    this.username = `${name}_${RUN}`;
    this.password = `pw-${name}-${randomBytes(9).toString('base64url')}`;
    secrets.push(this.password);
    this.algorithm = algorithm;
    this.kp = generateKeyPair(algorithm);
    secretKeys.push(b64(this.kp.seed));
    this.identity = generateIdentity();
    secretKeys.push(b64(this.identity.seed));
    this.seq = 1; // the certificate seq of the current KEM key
    this.ev = Object.fromEntries(SUBSCRIPTIONS.map((s) => [s, []]));
    this.subErrors = [];
    this.connections = 0;
  }

  registerInput() {
    return {
      username: this.username, password: this.password, publicKey: b64(this.kp.publicKey), keyAlgorithm: this.algorithm,
      identityKey: b64(this.identity.publicKey),
      publicKeySignature: b64(certifyKEMKey(this.identity, this.algorithm, 1, this.kp.publicKey)),
    };
  }

  async register() {
    const input = this.registerInput();
    const d = await ok(anon, Q.register, { input });
    const p = d.register;
    this.token = p.token;
    this.id = p.user.id;
    this.keyId = p.user.publicKey.id;
    this.keyring.set(this.keyId, this.kp);
    assertEq(p.user.username, this.username, `${this.name}: registered username`);
    assertEq(p.user.publicKey.algorithm, this.algorithm, `${this.name}: key algorithm`);
    assertEq(p.user.publicKey.key, b64(this.kp.publicKey), `${this.name}: stored public key`);
    assertEq(p.user.publicKey.fingerprint, fingerprint(this.kp.publicKey), `${this.name}: fingerprint per envelope-v1.md`);
    assertEq([p.user.publicKey.seq, p.user.publicKey.signature], [1, input.publicKeySignature], `${this.name}: the first key's certificate, seq 1`);
    assertEq(p.user.identityKey?.key, input.identityKey, `${this.name}: stored identity key`);
    assertEq(p.user.identityKey?.fingerprint, fingerprint(this.identity.publicKey), `${this.name}: identity key fingerprint (the v1 formula)`);
    this.pins.checkKey(p.user); // a client pins its own identity too
    assert(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(this.id), `${this.name}: user id ${this.id} is not a lower-case UUID`);
    this.http = httpClient(this.token);
    this.client = apollo(this.http); // HTTP only until connect()
    log(`   ${this.name} registered: ${this.id} ${this.algorithm} key ${this.keyId} [${p.user.publicKey.fingerprint}]`);
  }

  // login and restore the keys from the backup (a new device).
  async restore(passphrase) {
    const d = await ok(anon, Q.login, { u: this.username, p: this.password });
    this.token = d.login.token;
    this.id = d.login.user.id;
    this.http = httpClient(this.token);
    this.client = apollo(this.http);
    const sealed = (await ok(this.client, Q.keyBackup)).keyBackup;
    assert(sealed, `${this.name}: keyBackup is null`);
    const b = await openBackup(this.id, passphrase, sealed);
    this.identity = identityFromSeed(b.identitySeed);
    for (const k of b.kemKeys) this.keyring.set(k.keyId, keyPairFromSeed(k.algorithm, k.seed));
    const me = (await ok(this.client, Q.me)).me;
    assertEq(me.identityKey.key, b64(this.identity.publicKey), `${this.name}: the restored identity key is the account's`);
    assert(this.keyring.has(me.publicKey.id), `${this.name}: the backup holds the current key ${me.publicKey.id}`);
    this.keyId = me.publicKey.id;
    this.kp = this.keyring.get(this.keyId);
    assertEq(b64(this.kp.publicKey), me.publicKey.key, `${this.name}: the restored current KEM key`);
    this.pins.checkKey(me);
    return sealed;
  }

  // connect opens one graphql-transport-ws socket (graphql-ws createClient via
  // Apollo's GraphQLWsLink) and subscribes to every live event.
  async connect() {
    const n = ++this.connections;
    let connected = false;
    this.ws = createClient({
      url: WS_URL,
      webSocketImpl: WebSocket,
      connectionParams: { authToken: this.token },
      retryAttempts: 0,
      lazy: true,
      on: {
        connected: () => { connected = true; },
        closed: (ev) => { if (!this.closing) this.subErrors.push(`socket closed unexpectedly: ${ev?.code} ${ev?.reason}`); },
        error: (err) => { if (!this.closing) this.subErrors.push(`socket error: ${err?.message ?? err}`); },
      },
    });
    this.closing = false;
    const wsLink = new GraphQLWsLink(this.ws);
    const link = split(
      ({ query }) => {
        const d = getMainDefinition(query);
        return d.kind === 'OperationDefinition' && d.operation === 'subscription';
      },
      wsLink,
      this.http,
    );
    this.client = apollo(ApolloLink.from([link]));
    this.subs = SUBSCRIPTIONS.map((s) =>
      this.client.subscribe({ query: Q[s], fetchPolicy: 'no-cache', errorPolicy: 'all' }).subscribe({
        next: (r) => {
          if (r.errors?.length) this.subErrors.push(`${s}: ${show(r.errors)}`);
          else this.ev[s].push(typeof r.data[s] === 'object' ? { ...r.data[s], conn: n } : r.data[s]);
        },
        error: (e) => { if (!this.closing) this.subErrors.push(`${s} subscription error: ${e?.message ?? show(e)}`); },
      }),
    );
    await waitUntil(() => connected || this.subErrors.length, `${this.name}'s websocket to connect`);
    this.checkSubs();
  }

  // writeBackup seals every key this user has (identity and every KEM key, current and
  // past) with its passphrase, stores it and reads it back.
  async writeBackup() {
    if (!this.passphrase) {
      this.passphrase = `${this.name}'s bäckup phrase ✓ ${randomBytes(6).toString('base64url')}`;
      assert(passphraseLongEnough(this.passphrase), 'passphrase long enough');
      secrets.push(this.passphrase);
    }
    const kemKeys = [...this.keyring].map(([keyId, kp]) => ({ keyId, algorithm: kp.algorithm, seed: kp.seed }));
    const sealed = await sealBackup(this.id, this.passphrase, backupPlaintext(this.identity.seed, kemKeys));
    assertEq((await ok(this.client, Q.setKeyBackup, { b: sealed })).setKeyBackup, true, `${this.name}: setKeyBackup`);
    assertEq((await ok(this.client, Q.keyBackup)).keyBackup, sealed, `${this.name}: keyBackup returns the sealed backup byte for byte`);
    this.backup = sealed;
    log(`   ${this.name} stored a backup of ${kemKeys.length} KEM key(s) (${sealed.length} bytes)`);
  }

  // rotate publishes a new KEM key certified with the next seq (read from the server
  // first, as a client on another device would) and rewrites the backup if there is one.
  async rotate(algorithm) {
    const me = (await ok(this.client, Q.me)).me;
    const seq = me.publicKey.seq + 1;
    const kp = generateKeyPair(algorithm);
    secretKeys.push(b64(kp.seed));
    const u = (await ok(this.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: algorithm, seq, sig: b64(certifyKEMKey(this.identity, algorithm, seq, kp.publicKey)) })).rotateKey;
    assert(u.publicKey.id !== this.keyId, 'rotateKey gives a new key id');
    assertEq([u.publicKey.algorithm, u.publicKey.key, u.publicKey.fingerprint, u.publicKey.seq], [algorithm, b64(kp.publicKey), fingerprint(kp.publicKey), seq], `${this.name}'s rotated key`);
    assert(verifyKEMKeyCertificate(this.identity.publicKey, algorithm, seq, kp.publicKey, unb64(u.publicKey.signature)), 'the stored certificate verifies');
    const old = { keyId: this.keyId, kp: this.kp };
    this.kp = kp;
    this.keyId = u.publicKey.id;
    this.seq = seq;
    this.keyring.set(this.keyId, kp);
    this.pins.checkKey(u);
    if (this.backup) await this.writeBackup();
    log(`   ${this.name} rotated ${old.keyId} -> ${this.keyId} (seq ${seq})`);
    return { old, user: u };
  }

  checkSubs() {
    if (this.subErrors.length) fail(`${this.name}'s subscriptions failed: ${this.subErrors.join('; ')}`);
  }

  async disconnect() {
    this.closing = true;
    for (const s of this.subs ?? []) s.unsubscribe();
    this.subs = [];
    await this.ws?.dispose();
    this.client.stop();
    this.client = apollo(this.http);
  }

  mark(kind) {
    return this.ev[kind].length;
  }

  async waitEvent(kind, pred, what, since = 0) {
    return waitUntil(() => {
      this.checkSubs();
      return this.ev[kind].slice(since).find(pred);
    }, `${this.name} to receive ${kind}: ${what}`);
  }

  // The key pair of a recipient key this user was given.
  keyFor(myKey, where) {
    assert(myKey, `${this.name}: ${where}: myKey is null`);
    assertEq(myKey.userId, this.id, `${this.name}: ${where}: myKey.userId (the caller's own key per the contract)`);
    const kp = this.keyring.get(myKey.keyId);
    assert(kp, `${this.name}: ${where}: myKey.keyId ${myKey.keyId} is none of my keys ${[...this.keyring.keys()]}`);
    return kp;
  }

  // senderIdentity is the identity key this client pinned for userId, pinned on first
  // use from the server's answer.
  async senderIdentity(userId) {
    if (!this.pins.identityKey(userId)) this.pins.pin((await ok(this.client, Q.user, { id: userId })).user);
    return this.pins.identityKey(userId);
  }

  // A document is opened only after its signature verifies against the uploader's
  // pinned identity key (openSignedBytes); every failure is CannotOpenError.
  async openDocumentRaw(d, ciphertext) {
    if (d.version !== 2) throw new UnverifiedError(`document ${d.id} is version ${d.version}: sender not verified`);
    const meta = { kind: 'doc', objectId: d.id, senderId: d.uploader.id, conversationId: d.room ? d.room.id : d.recipient.id, name: d.name, mimeType: d.mimeType };
    const env = { ciphertext, nonce: d.nonce, signature: d.signature, keyDigests: d.keyDigests };
    return openSignedBytes(meta, env, d.myKey, this.keyFor(d.myKey, `document ${d.id}`), await this.senderIdentity(d.uploader.id));
  }

  async openDocument(d, ciphertext) {
    try {
      return await this.openDocumentRaw(d, ciphertext);
    } catch (e) {
      if (e instanceof CannotOpenError || e instanceof UnverifiedError) fail(`${this.name}: ${e.message}: document ${d.id}: ${show(d)}`);
      throw e;
    }
  }

  // A message is shown only after its signature verifies against the sender's pinned
  // identity key, over the transcript rebuilt from what the server returned.
  async openMessageRaw(m, where) {
    if (m.version !== 2) throw new UnverifiedError(`message ${m.id} is version ${m.version}: sender not verified`);
    const meta = {
      kind: 'msg', objectId: m.id, senderId: m.sender.id, conversationId: m.room ? m.room.id : m.recipient.id, attachmentId: m.attachmentId ?? '',
    };
    const env = { ciphertext: m.ciphertext, nonce: m.nonce, signature: m.signature, keyDigests: m.keyDigests };
    return openSigned(meta, env, m.myKey, this.keyFor(m.myKey, where), await this.senderIdentity(m.sender.id));
  }

  async openMessage(m, where) {
    try {
      return await this.openMessageRaw(m, where);
    } catch (e) {
      if (e instanceof CannotOpenError || e instanceof UnverifiedError) fail(`${this.name}: ${where}: ${e.message}: message ${m.id}: ${show(m)}`);
      throw e;
    }
  }
}

const alice = new Person('alice', 'ML_KEM_768');
const bob = new Person('bob', 'ML_KEM_768');
const carol = new Person('carol', 'X_WING');
const people = [alice, bob, carol];

// ---- helpers for the conversation ------------------------------------------------------

function flipByte(bytes, i) {
  const c = Uint8Array.from(bytes);
  c[i] ^= 1;
  return c;
}

// Recipient list of a conversation as `who`'s client builds it: the members' current
// keys, fetched from the API, each certificate verified against the identity key `who`
// pinned for its owner (KeyRefusedError / IdentityChangedError otherwise).
function recipientsOf(who, users) {
  return users.map((u) => who.pins.checkKey(u));
}

// members returns the members on a room's first page.
const members = (room) => room.membersConnection.edges.map((e) => e.node);

async function roomRecipients(who, roomId) {
  const ms = await page(who, Q.roomMembers, { id: roomId }, 'membersConnection', 50, (d) => {
    assert(d.room, `${who.name}: room(${roomId}) is null`);
    return d.room;
  });
  return recipientsOf(who, ms.map((m) => m.user));
}

// sealFor seals and signs a message (envelope version 2) with the sender's identity key.
async function sealFor(sender, { roomId, recipientId }, text, recipients, id = randomUUID(), { attachmentId } = {}) {
  plaintexts.push(text);
  const meta = { kind: 'msg', objectId: id, senderId: sender.id, conversationId: roomId ?? recipientId, attachmentId: attachmentId ?? '' };
  const env = await sealSigned(meta, text, recipients, sender.identity);
  const input = { id, ciphertext: env.ciphertext, nonce: env.nonce, keys: env.keys, signature: env.signature };
  if (roomId) input.roomId = roomId;
  else input.recipientId = recipientId;
  if (attachmentId) input.attachmentId = attachmentId;
  return input;
}

// uploadDocument seals bytes as a document and sends it as a GraphQL multipart request
// (the file part is the raw ciphertext). Returns {data, errors, input} as call() does.
// signAs, if given, replaces the signed metadata (to test that the server refuses it).
async function uploadDocument(who, { roomId, recipientId }, name, mimeType, bytes, recipients, { signAs } = {}) {
  const id = randomUUID();
  const meta = { kind: 'doc', objectId: id, senderId: who.id, conversationId: roomId ?? recipientId, name, mimeType };
  const env = await sealSigned(meta, bytes, recipients, who.identity);
  if (signAs) env.signature = signEnvelope({ ...meta, ...signAs }, env, who.identity).signature;
  const input = { id, name, mimeType, nonce: env.nonce, keys: env.keys, signature: env.signature, file: null, ...(roomId ? { roomId } : { recipientId }) };
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: print(Q.uploadDocument), variables: { input } }));
  form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.append('0', new Blob([unb64(env.ciphertext)], { type: 'application/octet-stream' }), 'sealed.bin');
  const r = await fetch(HTTP_URL, { method: 'POST', headers: { Authorization: `Bearer ${who.token}` }, body: form });
  const j = await r.json().catch(() => fail(`uploadDocument: HTTP ${r.status}, not JSON`));
  return { data: j.data ?? null, errors: j.errors ?? [], input, ciphertext: env.ciphertext };
}

// download fetches a document's ciphertext from its downloadUrl with the bearer header.
async function download(who, doc) {
  const r = await fetch(new URL(doc.downloadUrl, HTTP_URL), { headers: { Authorization: `Bearer ${who.token}` } });
  if (r.status !== 200) fail(`${who.name}: GET ${doc.downloadUrl}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const sentRoom = []; // {id, text, sender} in send order
const sentDM = [];

async function send(sender, target, text, recipients) {
  const input = await sealFor(sender, target, text, recipients);
  const d = await ok(sender.client, Q.sendMessage, { input });
  const m = d.sendMessage;
  assertEq(m.id, input.id, 'sendMessage keeps the client-generated id');
  assertEq(await sender.openMessage(m, 'sendMessage result'), text, `${sender.name} opens its own sent message`);
  (target.roomId ? sentRoom : sentDM).push({ id: m.id, text, sender: sender.name, input });
  log(`   ${sender.name} sent ${m.id} ${target.roomId ? 'to the room' : 'direct'}: ${JSON.stringify(text)}`);
  return m;
}

// Waits until `who` received message id live and opens it.
async function receiveLive(who, id, text) {
  const m = await who.waitEvent('messageAdded', (x) => x.id === id, `message ${id}`);
  assertEq(await who.openMessage(m, `live message ${id}`), text, `${who.name} decrypts live message ${id}`);
  return m;
}

// Proves that `target`'s socket is live and subscribed: `prober` sends a direct
// typing notice (repeatable and harmless) until it arrives.
async function ensureLive(target, prober) {
  const deadline = Date.now() + WAIT_MS;
  const since = target.mark('typing');
  for (;;) {
    await ok(prober.client, Q.setTyping, { to: target.id, t: true });
    const end = Date.now() + 250;
    while (Date.now() < end) {
      target.checkSubs();
      if (target.ev.typing.slice(since).some((e) => e.user.id === prober.id && !e.roomId)) {
        await ok(prober.client, Q.setTyping, { to: target.id, t: false });
        await sleep(50);
        return;
      }
      await sleep(15);
    }
    if (Date.now() > deadline) fail(`${target.name}'s subscriptions never became live (direct typing from ${prober.name})`);
  }
}

async function page(who, doc, vars, field, first, keyOf = (c) => c) {
  const seen = [];
  let after = null;
  for (let i = 0; i < 100; i++) {
    const d = await ok(who.client, doc, { ...vars, first, after });
    const conn = keyOf(d)[field];
    assert(conn.edges.length <= first, `${who.name}: page of ${conn.edges.length} edges with first: ${first}`);
    for (const e of conn.edges) {
      assert(e.cursor, 'edge without cursor');
      seen.push(e.node);
    }
    if (!conn.pageInfo.hasNextPage) return seen;
    assert(conn.pageInfo.endCursor, `${who.name}: hasNextPage without endCursor`);
    after = conn.pageInfo.endCursor;
  }
  fail(`${who.name}: paging did not end after 100 pages`);
}

// ---- the legacy protocol (subscriptions-transport-ws) on a raw socket ---------------------

function legacySocket(who) {
  const msgs = [];
  const errs = [];
  const sock = new WebSocket(WS_URL, 'graphql-ws');
  sock.on('message', (raw) => {
    let m;
    try {
      m = JSON.parse(raw.toString());
    } catch {
      errs.push(`non-JSON frame ${raw}`);
      return;
    }
    if (m.type === 'ka') return;
    msgs.push(m);
  });
  sock.on('error', (e) => errs.push(`socket error: ${e.message}`));
  const opened = new Promise((res, rej) => {
    sock.once('open', res);
    sock.once('error', rej);
  });
  const waitMsg = (pred, what) =>
    waitUntil(() => {
      if (errs.length) fail(`legacy socket (${who.name}): ${errs.join('; ')}`);
      const bad = msgs.find((m) => m.type === 'error' || m.type === 'connection_error');
      if (bad) fail(`legacy socket (${who.name}): ${show(bad)}`);
      return msgs.find(pred);
    }, `legacy graphql-ws socket (${who.name}): ${what}`);
  return { sock, msgs, opened, waitMsg, send: (m) => sock.send(JSON.stringify(m)) };
}

// =====================================================================================

async function main() {
  section('register three users');
  for (const p of people) await p.register();
  {
    const d = await ok(alice.client, Q.me);
    assertEq(d.me?.id, alice.id, 'me with alice token');
    const anonMe = await call(anon, Q.me);
    assert(!anonMe.errors.length && anonMe.data.me === null, `me without a token should be null, got ${show(anonMe)}`);
    const u = await ok(bob.client, Q.userByUsername, { u: alice.username });
    assertEq(u.userByUsername?.id, alice.id, 'userByUsername');
  }

  section('misuse: authentication');
  await misuse('login with a wrong password', anon, Q.login, { u: alice.username, p: 'definitely-wrong-password' }, 'UNAUTHENTICATED');
  await misuse('login as an unknown user', anon, Q.login, { u: `nobody_${RUN}`, p: 'definitely-wrong-password' }, 'UNAUTHENTICATED');
  {
    const d = await ok(anon, Q.login, { u: alice.username, p: alice.password });
    assertEq(d.login.user.id, alice.id, 'login with the right password');
  }
  {
    // A fresh would-be user, for registrations that must fail.
    const dave = new Person('dave', 'ML_KEM_768');
    await misuse('register a duplicate username', anon, Q.register, { input: { ...dave.registerInput(), username: alice.username } }, 'CONFLICT');
    const stranger = generateIdentity();
    const input = dave.registerInput();
    await misuseField('register with a certificate by another identity key', anon, Q.register,
      { input: { ...input, publicKeySignature: b64(certifyKEMKey(stranger, 'ML_KEM_768', 1, dave.kp.publicKey)) } }, 'publicKeySignature');
    await misuseField('register with a certificate for seq 2', anon, Q.register,
      { input: { ...input, publicKeySignature: b64(certifyKEMKey(dave.identity, 'ML_KEM_768', 2, dave.kp.publicKey)) } }, 'publicKeySignature');
    await misuseField('register with a certificate of another key', anon, Q.register,
      { input: { ...input, publicKeySignature: b64(certifyKEMKey(dave.identity, 'ML_KEM_768', 1, generateKeyPair('ML_KEM_768').publicKey)) } }, 'publicKeySignature');
    await misuseRequired('register with an identity key and no certificate', anon, Q.register,
      { input: { ...input, publicKeySignature: undefined } }, 'publicKeySignature');
    await misuseField('register with an identity key of 1951 bytes', anon, Q.register,
      { input: { ...input, identityKey: b64(dave.identity.publicKey.subarray(1)) } }, 'identityKey');
    const u = await call(alice.client, Q.userByUsername, { u: dave.username });
    assert(!u.data?.userByUsername, `a refused registration created ${dave.username}: ${show(u)}`);
  }
  await misuse('createRoom without a token', anon, Q.createRoom, { input: { name: 'nope' } }, 'UNAUTHENTICATED');

  section('key backup: alice seals her keys with a passphrase the server never sees');
  await alice.writeBackup();
  assertEq((await ok(bob.client, Q.keyBackup)).keyBackup, null, 'bob has no backup (keyBackup is the caller\'s own)');
  await misuseField('setKeyBackup with a string that is not a sealed backup', alice.client, Q.setKeyBackup, { b: 'not a backup' }, 'backup');
  await misuseField('setKeyBackup with kdf scrypt', alice.client, Q.setKeyBackup, { b: JSON.stringify({ ...JSON.parse(alice.backup), kdf: 'scrypt' }) }, 'backup');
  await misuseField('setKeyBackup over 64 KiB', alice.client, Q.setKeyBackup, { b: JSON.stringify({ ...JSON.parse(alice.backup), ciphertext: b64(randomBytes(50 * 1024)) }) }, 'backup');
  assertEq((await ok(alice.client, Q.keyBackup)).keyBackup, alice.backup, 'a refused setKeyBackup leaves the stored backup alone');

  // A typing notice reaches only someone who shares a room or a direct
  // conversation with its sender, so the three share a lobby room: without
  // one, the liveness probe below would never arrive.
  await ok(alice.client, Q.createRoom, { input: { name: `Lobby ${RUN}`, isGroup: true, memberIds: [bob.id, carol.id] } });

  section('connect websockets (graphql-transport-ws via Apollo GraphQLWsLink)');
  for (const p of people) await p.connect();
  await ensureLive(alice, bob);
  await ensureLive(bob, alice);
  await ensureLive(carol, alice);
  {
    // A socket without a valid token may not subscribe.
    let got = null;
    let err = null;
    const bad = createClient({ url: WS_URL, webSocketImpl: WebSocket, connectionParams: { authToken: 'not-a-token' }, retryAttempts: 0, lazy: true });
    const unsub = bad.subscribe({ query: 'subscription { presence { online } }' }, {
      next: (v) => { got = v; },
      error: (e) => { err = e; },
      complete: () => { err = err ?? 'completed'; },
    });
    await waitUntil(() => got || err, 'a socket with an invalid token to be refused');
    assert(!got || got.errors, `a socket with an invalid token received data: ${show(got)}`);
    unsub();
    await bad.dispose();
    log(`   invalid token refused: ${err?.code ?? ''} ${err?.reason ?? err?.message ?? show(got?.errors)}`);
  }

  section('alice creates a group room; bob previews and joins by code');
  const roomName = `Plans ${RUN}`;
  const room = (await ok(alice.client, Q.createRoom, { input: { name: roomName, isGroup: true } })).createRoom;
  const roomId = room.id;
  assertEq([room.name, room.isGroup, room.memberCount, room.owner?.id], [roomName, true, 1, alice.id], 'created room');
  assertEq(members(room).map((m) => [m.user.id, m.role]), [[alice.id, 'OWNER']], 'created room members');
  assert(room.code, 'room has an invite code');
  const preview = (await ok(bob.client, Q.roomPreview, { code: room.code })).roomPreview;
  assertEq(preview, { id: roomId, name: roomName, isGroup: true, memberCount: 1 }, 'roomPreview before joining');

  await misuse('non-member reads a room', bob.client, Q.room, { id: roomId }, 'NOT_FOUND');
  await misuse('non-member sends typing to a room', bob.client, Q.setTyping, { r: roomId, t: true }, 'NOT_FOUND');

  const joined = (await ok(bob.client, Q.joinRoom, { code: room.code })).joinRoom;
  assertEq(joined.id, roomId, 'joinRoom returns the room');
  assertEq(joined.memberCount, 2, 'memberCount after bob joins');
  await alice.waitEvent('roomEvents', (e) => e.type === 'MEMBER_JOINED' && e.room.id === roomId && e.user?.id === bob.id, 'MEMBER_JOINED bob');

  section('alice adds carol with addRoomMember');
  await misuse('non-member (carol) reads the room', carol.client, Q.room, { id: roomId }, 'NOT_FOUND');
  await misuse('member (bob, not owner/admin) adds a member', bob.client, Q.addRoomMember, { r: roomId, u: carol.id }, 'FORBIDDEN');
  const added = (await ok(alice.client, Q.addRoomMember, { r: roomId, u: carol.id })).addRoomMember;
  assertEq(added.memberCount, 3, 'memberCount after carol is added');
  for (const p of [alice, bob]) {
    await p.waitEvent('roomEvents', (e) => e.type === 'MEMBER_JOINED' && e.room.id === roomId && e.user?.id === carol.id, 'MEMBER_JOINED carol');
  }
  // carol is in the room once added, so the event of her joining reaches her too.
  await carol.waitEvent('roomEvents', (e) => e.type === 'MEMBER_JOINED' && e.room.id === roomId && e.user?.id === carol.id, 'MEMBER_JOINED (herself)');
  {
    const mine = (await ok(carol.client, Q.myRooms)).myRooms;
    assert(mine.some((r) => r.id === roomId), `carol's myRooms lacks the room: ${show(mine)}`);
    const convs = await page(carol, Q.conversations, {}, 'conversations', 10);
    assert(convs.some((c) => c.room?.id === roomId && c.unreadCount === 0), `carol's conversations lack the room: ${show(convs)}`);
  }

  section('rename: member forbidden, owner emits RENAMED');
  await misuse('member (bob) renames the room', bob.client, Q.updateRoom, { r: roomId, name: 'bob was here' }, 'FORBIDDEN');
  const newName = `Plans v2 ${RUN}`;
  await ok(alice.client, Q.updateRoom, { r: roomId, name: newName });
  for (const p of people) {
    await p.waitEvent('roomEvents', (e) => e.type === 'RENAMED' && e.room.id === roomId && e.room.name === newName, 'RENAMED');
  }
  await misuse('member (bob) rotates the room code', bob.client, Q.rotateRoomCode, { r: roomId }, 'FORBIDDEN');
  await ok(alice.client, Q.rotateRoomCode, { r: roomId });
  for (const p of people) await p.waitEvent('roomEvents', (e) => e.type === 'CODE_ROTATED' && e.room.id === roomId, 'CODE_ROTATED');

  section('typing in the room');
  {
    const marks = people.map((p) => p.mark('typing'));
    await ok(bob.client, Q.setTyping, { r: roomId, t: true });
    for (const p of [alice, carol]) {
      await p.waitEvent('typing', (e) => e.user.id === bob.id && e.roomId === roomId && e.isTyping === true, 'bob typing in the room', marks[people.indexOf(p)]);
    }
    await ok(bob.client, Q.setTyping, { r: roomId, t: false });
    for (const p of [alice, carol]) {
      await p.waitEvent('typing', (e) => e.user.id === bob.id && e.roomId === roomId && e.isTyping === false, 'bob stopped typing', marks[people.indexOf(p)]);
    }
  }

  section('every member sends a sealed message; every member decrypts every one live');
  let keys = {};
  for (const p of people) keys[p.name] = await roomRecipients(p, roomId);
  for (const p of people) {
    assertEq(keys[p.name].map((r) => r.userId).sort(), people.map((x) => x.id).sort(), `${p.name} sees three members`);
    const carolKey = keys[p.name].find((r) => r.userId === carol.id);
    assertEq(carolKey.algorithm, 'X_WING', 'carol\'s key algorithm as seen by ' + p.name);
  }
  const texts = {
    alice: `alice: hello room 👋 ${RUN}-${randomBytes(4).toString('hex')}`,
    bob: `bob: hi alice, quantum-safe hi ${RUN}-${randomBytes(4).toString('hex')}`,
    carol: `carol (X-Wing): héllo from the hybrid side ${RUN}-${randomBytes(4).toString('hex')}`,
  };
  const first = {};
  for (const p of people) first[p.name] = await send(p, { roomId }, texts[p.name], keys[p.name]);
  for (const p of people) {
    for (const s of people) {
      const m = await receiveLive(p, first[s.name].id, texts[s.name]);
      assertEq([m.sender.id, m.room?.id, m.recipient], [s.id, roomId, null], `${p.name}: live message from ${s.name}: sender/room/recipient`);
    }
  }

  section('legacy graphql-ws protocol (subscriptions-transport-ws) on a raw socket');
  {
    const L = legacySocket(bob);
    await L.opened;
    assertEq(L.sock.protocol, 'graphql-ws', 'negotiated subprotocol');
    L.send({ type: 'connection_init', payload: { authToken: bob.token } });
    await L.waitMsg((m) => m.type === 'connection_ack', 'connection_ack');
    L.send({ id: 't', type: 'start', payload: { query: 'subscription T($r: ID) { typing(roomId: $r) { user { id } roomId isTyping } }', variables: { r: roomId } } });
    L.send({ id: 'm', type: 'start', payload: { query: `subscription M($r: ID) { messageAdded(roomId: $r) { ${MSG} } }`, variables: { r: roomId } } });
    // Prove the subscriptions are live with repeatable typing notices from alice.
    const deadline = Date.now() + WAIT_MS;
    while (!L.msgs.some((m) => m.type === 'data' && m.id === 't')) {
      if (Date.now() > deadline) fail(`legacy socket: no typing data within ${WAIT_MS} ms: ${show(L.msgs)}`);
      await ok(alice.client, Q.setTyping, { r: roomId, t: true });
      await sleep(150);
    }
    await ok(alice.client, Q.setTyping, { r: roomId, t: false });
    const t = L.msgs.find((m) => m.type === 'data' && m.id === 't').payload.data.typing;
    assertEq([t.user.id, t.roomId], [alice.id, roomId], 'legacy typing event');
    await sleep(100);
    const text = `alice over the legacy protocol: ${RUN}-${randomBytes(4).toString('hex')}`;
    const m = await send(alice, { roomId }, text, keys.alice);
    const got = await L.waitMsg((x) => x.type === 'data' && x.id === 'm' && x.payload?.data?.messageAdded?.id === m.id, 'messageAdded data');
    assert(!got.payload.errors, `legacy data carries errors: ${show(got.payload.errors)}`);
    assertEq(await bob.openMessage(got.payload.data.messageAdded, 'legacy messageAdded'), text, 'bob decrypts the legacy-protocol message');
    for (const p of people) await receiveLive(p, m.id, text);
    L.send({ id: 't', type: 'stop' });
    L.send({ id: 'm', type: 'stop' });
    L.send({ type: 'connection_terminate' });
    await new Promise((res) => {
      const timer = setTimeout(() => { L.sock.terminate(); res(); }, 2000);
      L.sock.once('close', () => { clearTimeout(timer); res(); });
      L.sock.close(1000);
    });
    log('   legacy protocol: connection_ack, typing and messageAdded data received and decrypted');
  }

  section('misuse: envelopes');
  {
    const missing = keys.alice.filter((r) => r.userId !== carol.id);
    const input = await sealFor(alice, { roomId }, `alice forgot carol ${RUN}`, missing);
    const e = await misuse('envelope missing a member', alice.client, Q.sendMessage, { input }, 'BAD_USER_INPUT');
    assertEq(e.extensions.missingUserIds, [carol.id], 'extensions.missingUserIds');
  }
  {
    const input = await sealFor(alice, { roomId }, `upper-case id ${RUN}`, keys.alice);
    input.id = input.id.toUpperCase();
    await misuse('message id not a lower-case UUID', alice.client, Q.sendMessage, { input }, 'BAD_USER_INPUT');
  }
  {
    const input = await sealFor(alice, { roomId }, `bad nonce ${RUN}`, keys.alice);
    input.nonce = b64(randomBytes(8));
    await misuse('nonce of 8 bytes', alice.client, Q.sendMessage, { input }, 'BAD_USER_INPUT');
  }
  {
    // New content is version 2 only: an unsigned envelope is refused.
    const input = await sealFor(alice, { roomId }, `unsigned ${RUN}`, keys.alice);
    delete input.signature;
    await misuseRequired('message without a signature', alice.client, Q.sendMessage, { input }, 'signature');
  }
  {
    const input = await sealFor(alice, { recipientId: alice.id }, `note to self ${RUN}`, keys.alice.filter((r) => r.userId === alice.id));
    await misuse('direct message to oneself', alice.client, Q.sendMessage, { input }, 'BAD_USER_INPUT');
  }
  {
    // Same id again: same content is a safe retry, other content is CONFLICT.
    const prev = sentRoom[0];
    const again = (await ok(alice.client, Q.sendMessage, { input: prev.input })).sendMessage;
    assertEq(again.id, prev.id, 'retrying sendMessage with the same id and content returns the stored message');
    const input = await sealFor(alice, { roomId }, `other content, same id ${RUN}`, keys.alice, prev.id);
    await misuse('same message id with other content', alice.client, Q.sendMessage, { input }, 'CONFLICT');
  }
  await misuse('non-sender deletes a message', bob.client, Q.deleteMessage, { id: first.alice.id }, 'FORBIDDEN');

  section('documents: alice uploads a sealed file (multipart), attaches it to a message; every member downloads and opens it');
  {
    const text = `alice's notes: the plan, in a file ${RUN}-${randomBytes(4).toString('hex')}`;
    plaintexts.push(text);
    const name = 'Notizen – Übersicht.txt';
    const up = await uploadDocument(alice, { roomId }, name, 'text/plain', new TextEncoder().encode(text), keys.alice);
    if (up.errors.length) fail(`uploadDocument: ${show(up.errors)}`);
    const doc = up.data.uploadDocument;
    assertEq([doc.id, doc.name, doc.mimeType, doc.uploader.id, doc.room?.id], [up.input.id, name, 'text/plain', alice.id, roomId], 'uploaded document');
    const caption = `see the attached notes ${RUN}-${randomBytes(4).toString('hex')}`;
    const input = await sealFor(alice, { roomId }, caption, keys.alice, randomUUID(), { attachmentId: doc.id });
    const m = (await ok(alice.client, Q.sendMessage, { input })).sendMessage;
    sentRoom.push({ id: m.id, text: caption, sender: 'alice', input });
    for (const p of people) {
      const live = await receiveLive(p, m.id, caption);
      assertEq([live.attachmentId, live.version], [doc.id, 2], `${p.name}: the live message's attachmentId and version`);
      const d = (await ok(p.client, Q.document, { id: doc.id })).document;
      assertEq([d.version, d.keyDigests?.length], [2, 3], `${p.name}: the document's version and keyDigests`);
      const ct = await download(p, d);
      assertEq(b64(ct), up.ciphertext, `${p.name} downloads the ciphertext as uploaded`);
      assertEq(new TextDecoder().decode(await p.openDocument(d, ct)), text, `${p.name} opens the document`);
    }
    {
      // Client side: the document's signed metadata is bound.
      const d = (await ok(bob.client, Q.document, { id: doc.id })).document;
      const ct = await download(bob, d);
      await refused('a document under another name', CannotOpenError, () => bob.openDocumentRaw({ ...d, name: 'Notizen.txt' }, ct));
      await refused('a document with another MIME type', CannotOpenError, () => bob.openDocumentRaw({ ...d, mimeType: 'application/pdf' }, ct));
      await refused('a document with a changed byte', CannotOpenError, () => bob.openDocumentRaw(d, flipByte(ct, 3)));
    }
    {
      // A document in a direct conversation: cid is the recipient's id (Document.recipient).
      const secret = `bob's private file for alice ${RUN}-${randomBytes(4).toString('hex')}`;
      plaintexts.push(secret);
      const ba = recipientsOf(bob, (await ok(bob.client, Q.users, { ids: [bob.id, alice.id] })).users);
      const up = await uploadDocument(bob, { recipientId: alice.id }, 'private.txt', 'text/plain', new TextEncoder().encode(secret), ba);
      if (up.errors.length) fail(`uploadDocument (direct): ${show(up.errors)}`);
      const d = (await ok(alice.client, Q.document, { id: up.input.id })).document;
      assertEq([d.room, d.recipient?.id, d.uploader.id, d.version], [null, alice.id, bob.id, 2], 'direct document');
      assertEq(new TextDecoder().decode(await alice.openDocument(d, await download(alice, d))), secret, 'alice opens bob\'s direct document');
      const r = await call(carol.client, Q.document, { id: d.id });
      assert(!r.data?.document, `carol may read bob's direct document: ${show(r)}`);
      const g = await fetch(new URL(d.downloadUrl, HTTP_URL), { headers: { Authorization: `Bearer ${carol.token}` } });
      assertEq(g.status, 404, 'carol downloading bob\'s direct document');
      await g.arrayBuffer();
    }
    const uploadMisuse = async (what, up, field) => {
      const e = up.errors[0];
      if (e?.extensions?.code !== 'BAD_USER_INPUT' || (field && e.extensions.field !== field)) fail(`${what}: ${show(up.errors)}, want BAD_USER_INPUT naming ${field}`);
      misuseResults.push({ what, code: 'BAD_USER_INPUT' });
      log(`   misuse ok: ${what} -> BAD_USER_INPUT (${e.message})`);
    };
    await uploadMisuse('uploadDocument with a MIME type off the list', await uploadDocument(alice, { roomId }, 'run.sh', 'application/x-sh', new TextEncoder().encode('#!/bin/sh'), keys.alice));
    await uploadMisuse('uploadDocument signed under another name', await uploadDocument(alice, { roomId }, 'a.txt', 'text/plain', new TextEncoder().encode('x'), keys.alice, { signAs: { name: 'b.txt' } }), 'signature');
    await uploadMisuse('uploadDocument signed with another MIME type', await uploadDocument(alice, { roomId }, 'a.txt', 'text/plain', new TextEncoder().encode('x'), keys.alice, { signAs: { mimeType: 'application/pdf' } }), 'signature');
    // The document goes; the message keeps its attachmentId, and its signature still verifies.
    assertEq((await ok(alice.client, Q.deleteDocument, { id: doc.id })).deleteDocument, true, 'deleteDocument');
    for (const p of people) {
      const h = await page(p, Q.roomPage, { id: roomId }, 'messages', 50, (d) => d.room);
      const kept = h.find((x) => x.id === m.id);
      assertEq(kept.attachmentId, doc.id, `${p.name}: attachmentId kept after the document is deleted`);
      assertEq(await p.openMessage(kept, 'message whose attachment was deleted'), caption, `${p.name} still verifies and opens it`);
    }
  }

  section('signatures: the server refuses what does not verify, the client what it cannot verify');
  {
    const meta = (input, patch = {}) => ({ kind: 'msg', objectId: input.id, senderId: alice.id, conversationId: roomId, attachmentId: input.attachmentId ?? '', ...patch });
    const mk = async (what) => sealFor(alice, { roomId }, `${what} ${RUN}`, keys.alice);
    {
      const input = await mk('flipped signature');
      input.signature = b64(flipByte(unb64(input.signature), 11));
      await misuseField('sendMessage with a flipped signature byte', alice.client, Q.sendMessage, { input }, 'signature');
    }
    {
      const input = await mk('signed by carol');
      input.signature = signEnvelope(meta(input), input, carol.identity).signature;
      await misuseField('sendMessage from alice signed with carol\'s identity key', alice.client, Q.sendMessage, { input }, 'signature');
    }
    {
      const input = await mk('signed with an attachment');
      input.signature = signEnvelope(meta(input, { attachmentId: randomUUID() }), input, alice.identity).signature;
      await misuseField('sendMessage signed with an attachmentId it does not carry', alice.client, Q.sendMessage, { input }, 'signature');
    }
    {
      const input = await mk('signed for other recipients');
      input.signature = signEnvelope(meta(input), { ...input, keys: input.keys.filter((k) => k.userId !== carol.id) }, alice.identity).signature;
      await misuseField('sendMessage whose signature leaves a recipient key out', alice.client, Q.sendMessage, { input }, 'signature');
    }
    {
      const input = await mk('signed as another room');
      input.signature = signEnvelope(meta(input, { conversationId: randomUUID() }), input, alice.identity).signature;
      await misuseField('sendMessage signed for another conversation', alice.client, Q.sendMessage, { input }, 'signature');
    }
    {
      // Idempotent retries compare the signature: same envelope, signed again (hedged), is another message.
      const prev = sentRoom.find((x) => x.sender === 'alice');
      const again = { ...prev.input, signature: signEnvelope(meta(prev.input), prev.input, alice.identity).signature };
      assert(again.signature !== prev.input.signature, 'hedged signatures differ');
      await misuse('the same message id and envelope with another valid signature', alice.client, Q.sendMessage, { input: again }, 'CONFLICT');
    }
    // Client side: bob rebuilds the transcript from what the server returned; any change fails.
    const h = await page(bob, Q.roomPage, { id: roomId }, 'messages', 50, (d) => d.room);
    const m = h.find((x) => x.id === first.alice.id);
    const other = h.find((x) => x.id === first.carol.id);
    assertEq(await bob.openMessageRaw(m, 'before tampering'), texts.alice, 'bob opens alice\'s message');
    for (const [what, forged] of [
      ['keyDigests reordered', { ...m, keyDigests: [...m.keyDigests].reverse() }],
      ['keyDigests missing', { ...m, keyDigests: null }],
      ['another message\'s signature', { ...m, signature: other.signature }],
      ['an attachmentId added', { ...m, attachmentId: randomUUID() }],
      ['the sender changed to carol', { ...m, sender: { ...m.sender, id: carol.id } }],
      ['the ciphertext of another message', { ...m, ciphertext: other.ciphertext, nonce: other.nonce }],
      ['a version 1 label on a signed message', { ...m, version: 1 }],
    ]) {
      await refused(`bob is shown alice's message with ${what}`, what.startsWith('a version 1') ? UnverifiedError : CannotOpenError, () => bob.openMessageRaw(forged, what));
    }
  }

  section('read receipts');
  {
    const n = (await ok(bob.client, Q.markRead, { ids: [first.alice.id, first.carol.id] })).markRead;
    assertEq(n, 2, 'markRead newly marked');
    for (const p of [alice, carol]) {
      for (const mid of [first.alice.id, first.carol.id]) {
        await p.waitEvent('readReceipts', (r) => r.messageId === mid && r.user.id === bob.id && r.readAt, `bob read ${mid}`);
      }
    }
    assertEq((await ok(bob.client, Q.markRead, { ids: [first.alice.id] })).markRead, 0, 'markRead again marks nothing new');
    const hist = await page(bob, Q.roomPage, { id: roomId }, 'messages', 50, (d) => d.room);
    assert(hist.find((m) => m.id === first.alice.id).myKey.readAt, 'bob\'s myKey.readAt is set after markRead');
  }

  section('key rotation: certified with the next seq, KEM_ROTATED, stale keyId refused, refetch and seal again');
  {
    const kp = generateKeyPair('X_WING');
    const cert = (seq, pk = kp.publicKey, id = carol.identity) => b64(certifyKEMKey(id, 'X_WING', seq, pk));
    await misuseField('rotateKey with the current seq again', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 1, sig: cert(1) }, 'seq');
    await misuseField('rotateKey skipping a seq', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 3, sig: cert(3) }, 'seq');
    await misuseField('rotateKey with a certificate for seq 3 sent as seq 2', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 2, sig: cert(3) }, 'signature');
    await misuseField('rotateKey with a certificate of another key', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 2, sig: cert(2, generateKeyPair('X_WING').publicKey) }, 'signature');
    await misuseField('rotateKey with a certificate by another identity key', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 2, sig: cert(2, kp.publicKey, alice.identity) }, 'signature');
    await misuseRequired('rotateKey without a certificate', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', seq: 2 }, 'sig');
    await misuseRequired('rotateKey without a seq', carol.client, Q.rotateKey, { pk: b64(kp.publicKey), alg: 'X_WING', sig: cert(2) }, 'seq');
  }
  const carolOld = { keyId: carol.keyId, kp: carol.kp };
  const carolOldUser = (await ok(alice.client, Q.user, { id: carol.id })).user;
  {
    const marks = [alice.mark('keyChanged'), bob.mark('keyChanged')];
    const { user: u } = await carol.rotate('X_WING');
    for (const [i, p] of [alice, bob].entries()) {
      const ev = await p.waitEvent('keyChanged', (e) => e.user.id === carol.id && e.kind === 'KEM_ROTATED', 'carol KEM_ROTATED', marks[i]);
      // An ordinary rotation: the new key is certified by the pinned identity, no warning.
      assertEq(p.pins.checkKey(ev.user).keyId, carol.keyId, `${p.name} verifies carol's new key from the keyChanged event`);
    }
    // The client refuses what a dishonest server could present instead.
    const forged = { ...u, publicKey: { ...u.publicKey, signature: b64(flipByte(unb64(u.publicKey.signature), 40)) } };
    await refused('carol\'s new key with a forged certificate', KeyRefusedError, () => bob.pins.checkKey(forged));
    await refused('carol\'s old key (seq 1) presented again as current', KeyRefusedError, () => alice.pins.checkKey(carolOldUser));
    const other = generateKeyPair('X_WING');
    const sameSeq = { ...u, publicKey: { ...u.publicKey, id: randomUUID(), key: b64(other.publicKey), fingerprint: fingerprint(other.publicKey), signature: b64(certifyKEMKey(carol.identity, 'X_WING', carol.seq, other.publicKey)) } };
    await refused('another key of carol with the same seq 2, validly certified', KeyRefusedError, () => alice.pins.checkKey(sameSeq));

    const text = `alice after carol's rotation ${RUN}-${randomBytes(4).toString('hex')}`;
    const stale = await sealFor(alice, { roomId }, text, keys.alice); // alice's cached keys
    const e = await misuse('envelope with carol\'s rotated-out key', alice.client, Q.sendMessage, { input: stale }, 'BAD_USER_INPUT');
    assertEq(e.extensions.staleKeyIds, [carolOld.keyId], 'extensions.staleKeyIds');
    keys.alice = await roomRecipients(alice, roomId); // refetch
    assertEq(keys.alice.find((r) => r.userId === carol.id).keyId, carol.keyId, 'refetched key of carol');
    plaintexts.pop(); // the same text is sealed again below
    const m = await send(alice, { roomId }, text, keys.alice);
    for (const p of people) await receiveLive(p, m.id, text);
    assertEq(m.myKey.keyId, alice.keyId, 'alice\'s own key');
    const live = carol.ev.messageAdded.find((x) => x.id === m.id);
    assertEq(live.myKey.keyId, carol.keyId, 'carol\'s myKey names her new key');
    // Old messages still open with the old seed, and only with it.
    const d = await ok(carol.client, Q.roomPage, { id: roomId, first: 50 });
    const old = d.room.messages.edges.map((e) => e.node).find((x) => x.id === first.bob.id);
    assertEq(old.myKey.keyId, carolOld.keyId, 'carol\'s key on an old message is her old key');
    assertEq(await carol.openMessage(old, 'old message after rotation'), texts.bob, 'carol opens an old message with her old seed');
    await refused('carol\'s new seed opens a message sealed to her old key', CannotOpenError, () => openSigned(
      { kind: 'msg', objectId: old.id, senderId: bob.id, conversationId: roomId, attachmentId: '' },
      { ciphertext: old.ciphertext, nonce: old.nonce, signature: old.signature, keyDigests: old.keyDigests }, old.myKey, carol.kp, bob.identity.publicKey));
    keys.bob = await roomRecipients(bob, roomId);
    keys.carol = await roomRecipients(carol, roomId);
  }

  section('direct messages alice <-> bob');
  {
    const ab = recipientsOf(alice, (await ok(alice.client, Q.users, { ids: [alice.id, bob.id] })).users);
    assertEq(ab.map((r) => r.userId).sort(), [alice.id, bob.id].sort(), 'users(ids)');
    const t1 = `alice -> bob, just us ${RUN}-${randomBytes(4).toString('hex')}`;
    const m1 = await send(alice, { recipientId: bob.id }, t1, ab);
    assertEq([m1.room, m1.recipient?.id], [null, bob.id], 'direct message room/recipient');
    for (const p of [alice, bob]) await receiveLive(p, m1.id, t1);
    const ba = recipientsOf(bob, (await ok(bob.client, Q.users, { ids: [bob.id, alice.id] })).users);
    const t2 = `bob -> alice, reply ${RUN}-${randomBytes(4).toString('hex')}`;
    const m2 = await send(bob, { recipientId: alice.id }, t2, ba);
    for (const p of [alice, bob]) await receiveLive(p, m2.id, t2);
    // Typing in a direct conversation.
    const since = bob.mark('typing');
    await ok(alice.client, Q.setTyping, { to: bob.id, t: true });
    await bob.waitEvent('typing', (e) => e.user.id === alice.id && !e.roomId && e.isTyping, 'alice typing to bob', since);
    await ok(alice.client, Q.setTyping, { to: bob.id, t: false });
    // History on both sides, newest first, one per page.
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      const h = await page(p, Q.dmPage, { with: other.id }, 'directMessages', 1, (d) => d);
      assertEq(h.map((m) => m.id), [m2.id, m1.id], `${p.name}'s directMessages newest first`);
      for (const m of h) assertEq(await p.openMessage(m, 'direct history'), m.id === m1.id ? t1 : t2, `${p.name} opens direct history`);
    }
    // Carol, not in the conversation, gets none of it (message(id) is a schema extension:
    // if the server has it, it must not reveal the message).
    const r = await call(carol.client, gql`query M($id: ID!) { message(id: $id) { id ciphertext } }`, { id: m1.id });
    if (r.errors[0]?.extensions?.code === 'GRAPHQL_VALIDATION_FAILED') log('   (no message(id) extension on this server)');
    else assert(!r.data?.message && (!r.errors.length || r.errors[0].extensions?.code === 'NOT_FOUND'), `carol may read alice->bob direct message: ${show(r)}`);
  }

  section('history paging: first: 2 + after, newest first, every message exactly once');
  {
    const want = sentRoom.map((s) => s.id).reverse();
    for (const p of people) {
      const h = await page(p, Q.roomPage, { id: roomId }, 'messages', 2, (d) => d.room);
      assertEq(h.map((m) => m.id), want, `${p.name}'s room history ids (newest first)`);
      for (const m of h) {
        const s = sentRoom.find((x) => x.id === m.id);
        assertEq(await p.openMessage(m, 'room history'), s.text, `${p.name} opens history message ${m.id}`);
      }
      log(`   ${p.name}: ${h.length} messages over ${Math.ceil(h.length / 2)} pages, all opened`);
    }
  }

  section('alice rotates her key; her client rewrites the backup');
  const aliceFirstKey = alice.keyId;
  {
    const before = alice.backup;
    const marks = [bob.mark('keyChanged'), carol.mark('keyChanged')];
    await alice.rotate('ML_KEM_768');
    assert(alice.backup !== before, 'a new backup after the rotation');
    for (const [i, p] of [bob, carol].entries()) {
      const ev = await p.waitEvent('keyChanged', (e) => e.user.id === alice.id && e.kind === 'KEM_ROTATED', 'alice KEM_ROTATED', marks[i]);
      p.pins.checkKey(ev.user);
    }
    for (const p of people) keys[p.name] = await roomRecipients(p, roomId);
    const t1 = `alice, with her second key ${RUN}-${randomBytes(4).toString('hex')}`;
    const m1 = await send(alice, { roomId }, t1, keys.alice);
    for (const p of people) await receiveLive(p, m1.id, t1);
    const t2 = `bob -> alice's second key ${RUN}-${randomBytes(4).toString('hex')}`;
    const m2 = await send(bob, { recipientId: alice.id }, t2, recipientsOf(bob, (await ok(bob.client, Q.users, { ids: [bob.id, alice.id] })).users));
    for (const p of [alice, bob]) await receiveLive(p, m2.id, t2);
    assertEq(m2.myKey.keyId, bob.keyId, 'bob\'s own key on his message');
    assertEq(alice.ev.messageAdded.find((x) => x.id === m2.id).myKey.keyId, alice.keyId, 'alice\'s new key on bob\'s message');
  }

  section('a new device for alice: log in, restore the backup, read the whole history');
  {
    const dev = new Person('alice (new device)', null, alice);
    await refused('the backup opened with a wrong passphrase', CannotOpenBackupError, () => dev.restore(`${alice.passphrase}!`));
    await refused('the backup opened as another user (its aad names alice)', CannotOpenBackupError, async () => {
      await openBackup(bob.id, alice.passphrase, alice.backup);
    });
    const sealed = await dev.restore(alice.passphrase);
    assertEq(sealed, alice.backup, 'the new device reads the backup written after the rotation');
    assertEq([...dev.keyring.keys()].sort(), [...alice.keyring.keys()].sort(), 'every KEM key of alice, current and past, restored');
    const room = await page(dev, Q.roomPage, { id: roomId }, 'messages', 50, (d) => d.room);
    const dm = await page(dev, Q.dmPage, { with: bob.id }, 'directMessages', 50, (d) => d);
    assertEq(room.map((m) => m.id), sentRoom.map((x) => x.id).reverse(), 'the new device sees the whole room history');
    assertEq(dm.map((m) => m.id), sentDM.map((x) => x.id).reverse(), 'the new device sees the whole direct history');
    const byKey = {};
    for (const m of [...room, ...dm]) {
      const s = [...sentRoom, ...sentDM].find((x) => x.id === m.id);
      assertEq(await dev.openMessage(m, 'history on the new device'), s.text, `the new device opens ${m.id}`);
      byKey[m.myKey.keyId] = (byKey[m.myKey.keyId] ?? 0) + 1;
    }
    assert(byKey[aliceFirstKey] > 0 && byKey[alice.keyId] > 0, `history sealed to both of alice's keys: ${show(byKey)}`);
    log(`   the new device opened ${room.length + dm.length} messages (${show(byKey)} by key id)`);
    // deleteKeyBackup removes it for every device; alice's first device writes a new one.
    assertEq((await ok(dev.client, Q.deleteKeyBackup)).deleteKeyBackup, true, 'deleteKeyBackup');
    assertEq((await ok(alice.client, Q.keyBackup)).keyBackup, null, 'keyBackup after deleteKeyBackup');
    await alice.writeBackup();
  }

  section('safety numbers: both sides compute the same 60 digits');
  for (const [a, b] of [[alice, bob], [alice, carol], [bob, carol]]) {
    const fromA = safetyNumber({ userId: a.id, identityKey: a.identity.publicKey }, { userId: b.id, identityKey: a.pins.identityKey(b.id) });
    const fromB = safetyNumber({ userId: b.id, identityKey: b.identity.publicKey }, { userId: a.id, identityKey: b.pins.identityKey(a.id) });
    assertEq(fromA, fromB, `${a.name} and ${b.name}'s safety numbers`);
    assert(/^\d{60}$/.test(fromA), `safety number of 60 digits: ${fromA}`);
    log(`   ${a.name}/${b.name}: ${formatSafetyNumber(fromA)}`);
  }

  section('presence: carol goes offline and comes back');
  {
    const marks = [alice.mark('presence'), bob.mark('presence')];
    await carol.disconnect();
    for (const [i, p] of [alice, bob].entries()) {
      await p.waitEvent('presence', (e) => e.user.id === carol.id && e.online === false, 'carol offline', marks[i]);
    }
    assertEq((await ok(alice.client, Q.user, { id: carol.id })).user.online, false, 'user(carol).online after disconnect');
    const marks2 = [alice.mark('presence'), bob.mark('presence')];
    await carol.connect();
    for (const [i, p] of [alice, bob].entries()) {
      await p.waitEvent('presence', (e) => e.user.id === carol.id && e.online === true, 'carol online', marks2[i]);
    }
    assertEq((await ok(alice.client, Q.user, { id: carol.id })).user.online, true, 'user(carol).online after reconnect');
    await ensureLive(carol, alice);
  }

  section('delete a message: tombstone and messageDeleted');
  {
    const victim = sentRoom.find((s) => s.sender === 'bob');
    assertEq((await ok(bob.client, Q.deleteMessage, { id: victim.id })).deleteMessage, true, 'deleteMessage by the sender');
    for (const p of people) await p.waitEvent('messageDeleted', (id) => id === victim.id, `messageDeleted ${victim.id}`);
    const h = await page(alice, Q.roomPage, { id: roomId }, 'messages', 50, (d) => d.room);
    const tomb = h.find((m) => m.id === victim.id);
    assert(tomb && tomb.deleted === true && tomb.myKey === null, `tombstone: ${show(tomb)}`);
  }

  section('carol leaves: MEMBER_LEFT, and the room is gone for her');
  {
    assertEq((await ok(carol.client, Q.leaveRoom, { r: roomId })).leaveRoom, true, 'leaveRoom');
    for (const p of [alice, bob]) {
      await p.waitEvent('roomEvents', (e) => e.type === 'MEMBER_LEFT' && e.room.id === roomId && e.user?.id === carol.id, 'MEMBER_LEFT carol');
    }
    // "rooms the caller is in (and the one it was removed from)": the leaver hears it too.
    await carol.waitEvent('roomEvents', (e) => e.type === 'MEMBER_LEFT' && e.room.id === roomId && e.user?.id === carol.id, 'MEMBER_LEFT (herself)');
    await misuse('former member reads the room', carol.client, Q.room, { id: roomId }, 'NOT_FOUND');
    await misuse('former member pages the room', carol.client, Q.roomPage, { id: roomId, first: 2 }, 'NOT_FOUND');
    const input = await sealFor(alice, { roomId }, `still for carol ${RUN}`, keys.alice);
    const e = await misuse('envelope for a member who left', alice.client, Q.sendMessage, { input }, 'BAD_USER_INPUT');
    assertEq(e.extensions.unexpectedUserIds, [carol.id], 'extensions.unexpectedUserIds');
    const text = `alice and bob only now ${RUN}-${randomBytes(4).toString('hex')}`;
    const m = await send(alice, { roomId }, text, await roomRecipients(alice, roomId));
    for (const p of [alice, bob]) await receiveLive(p, m.id, text);
  }

  section('bob resets his identity: IDENTITY_CHANGED; alice seals nothing to him until she accepts');
  {
    const before = safetyNumber({ userId: alice.id, identityKey: alice.identity.publicKey }, { userId: bob.id, identityKey: bob.identity.publicKey });
    const identity = generateIdentity();
    const kp = generateKeyPair('ML_KEM_768');
    const seq = bob.seq + 1;
    const vars = (patch = {}) => ({
      ik: b64(identity.publicKey), pk: b64(kp.publicKey), alg: 'ML_KEM_768', seq,
      sig: b64(certifyKEMKey(identity, 'ML_KEM_768', seq, kp.publicKey)), password: bob.password, ...patch,
    });
    await misuseField('replace the identity key without the password', bob.client, Q.setIdentityKey, vars({ password: undefined }), 'password');
    await misuseField('replace the identity key with a wrong password', bob.client, Q.setIdentityKey, vars({ password: 'not-bobs-password' }), 'password');
    await misuseField('setIdentityKey with the current seq', bob.client, Q.setIdentityKey, vars({ seq: bob.seq, sig: b64(certifyKEMKey(identity, 'ML_KEM_768', bob.seq, kp.publicKey)) }), 'seq');
    await misuseField('setIdentityKey with a certificate by the old identity key', bob.client, Q.setIdentityKey, vars({ sig: b64(certifyKEMKey(bob.identity, 'ML_KEM_768', seq, kp.publicKey)) }), 'signature');
    assertEq((await ok(alice.client, Q.user, { id: bob.id })).user.identityKey.key, b64(bob.identity.publicKey), 'refused setIdentityKey calls change nothing');

    const marks = [alice.mark('keyChanged'), carol.mark('keyChanged')];
    const ownMark = bob.mark('keyChanged');
    secretKeys.push(b64(identity.seed), b64(kp.seed));
    const u = (await ok(bob.client, Q.setIdentityKey, vars())).setIdentityKey;
    assertEq([u.identityKey.key, u.publicKey.key, u.publicKey.seq], [b64(identity.publicKey), b64(kp.publicKey), seq], 'bob\'s new identity and KEM key');
    bob.identity = identity;
    bob.kp = kp;
    bob.keyId = u.publicKey.id;
    bob.seq = seq;
    bob.keyring.set(bob.keyId, kp);
    bob.pins.users.delete(bob.id);
    bob.pins.checkKey(u);
    for (const [i, p] of [alice, carol].entries()) {
      const ev = await p.waitEvent('keyChanged', (e) => e.user.id === bob.id && e.kind === 'IDENTITY_CHANGED', 'bob IDENTITY_CHANGED', marks[i]);
      await refused(`${p.name} seals to bob's new identity without accepting it`, IdentityChangedError, () => p.pins.checkKey(ev.user));
    }
    await refused('alice seals to the room with bob\'s changed identity', IdentityChangedError, () => roomRecipients(alice, roomId));
    // alice and bob compare safety numbers over another channel; they changed.
    const after = safetyNumber({ userId: alice.id, identityKey: alice.identity.publicKey }, { userId: bob.id, identityKey: identity.publicKey });
    assert(after !== before, 'the safety number changes with the identity key');
    const fromBob = safetyNumber({ userId: bob.id, identityKey: bob.identity.publicKey }, { userId: alice.id, identityKey: bob.pins.identityKey(alice.id) });
    assertEq(after, fromBob, 'alice and bob compare the new safety number');
    alice.pins.accept(bob.id);
    const text = `alice, after accepting bob's new identity ${RUN}-${randomBytes(4).toString('hex')}`;
    const m = await send(alice, { roomId }, text, await roomRecipients(alice, roomId));
    for (const p of [alice, bob]) await receiveLive(p, m.id, text);
    assertEq(bob.ev.messageAdded.find((x) => x.id === m.id).myKey.keyId, bob.keyId, 'bob\'s new key on alice\'s message');
    // carol accepts too; bob's own sockets get no keyChanged for his own change.
    carol.pins.accept(bob.id);
    await carol.waitEvent('keyChanged', (e) => e.user.id === bob.id, 'bob IDENTITY_CHANGED');
    assert(!bob.ev.keyChanged.slice(ownMark).some((e) => e.user.id === bob.id), `bob received keyChanged for his own change: ${show(bob.ev.keyChanged)}`);
  }

  section('owner deletes the room: DELETED');
  {
    await misuse('member (bob) deletes the room', bob.client, Q.deleteRoom, { r: roomId }, 'FORBIDDEN');
    assertEq((await ok(alice.client, Q.deleteRoom, { r: roomId })).deleteRoom, true, 'deleteRoom');
    await bob.waitEvent('roomEvents', (e) => e.type === 'DELETED' && e.room.id === roomId, 'DELETED');
  }

  section('every member got every message it may read live, exactly once');
  await sleep(200);
  for (const p of people) {
    p.checkSubs();
    const ids = p.ev.messageAdded.map((m) => m.id);
    const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
    assert(!dup.length, `${p.name} got messages twice live: ${dup}`);
    for (const s of [...sentRoom, ...sentDM]) {
      const shouldGet = s.input.recipientId ? [s.sender, s.input.recipientId === alice.id ? 'alice' : 'bob'].includes(p.name) : s.input.keys.some((k) => k.userId === p.id);
      const got = ids.includes(s.id);
      if (shouldGet && !got) fail(`${p.name} never received ${s.id} live`);
      if (!shouldGet && got) fail(`${p.name} received ${s.id} live but is not one of its recipients`);
    }
  }
}

// ---- run -------------------------------------------------------------------------------

let code = 0;
try {
  await main();
  log(`all checks passed: ${plaintexts.length} plaintexts, ${misuseResults.length} misuse checks, ${clientRefusals.length} client refusals`);
} catch (e) {
  code = 1;
  console.error(`scenario: FAILED: ${e instanceof ScenarioError ? e.message : e?.stack ?? e}`);
} finally {
  for (const p of people) {
    try {
      await p.disconnect();
    } catch {
      /* closing anyway */
    }
  }
  anon.stop();
  clearTimeout(watchdog);
}
if (code === 0) {
  console.log(JSON.stringify({
    ok: true, plaintexts, secrets, secretKeys, usernames: people.map((p) => p.username), misuseChecks: misuseResults.length, clientRefusals: clientRefusals.length,
  }));
}
process.exitCode = code;
// Everything is closed; if a library still holds a handle, do not hang.
setTimeout(() => {
  console.error('scenario: note: a handle was still open 3 s after closing every client; exiting');
  process.exit(code);
}, 3000).unref();
