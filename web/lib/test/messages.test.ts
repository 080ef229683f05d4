// Sending through Apollo: recipients paged from membersConnection, a lost
// answer retried with the same input, stale keys refetched and resealed under
// the same id, CONFLICT after a reseal resolved to the stored message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import 'fake-indexeddb/auto';
import { checkPinnedContacts, type ReceivedV2, MessageByIdDocument, b64, randomUUID, readMessage, sealV1, toWire, CannotOpenError, certifyKemKey, generateIdentity, type ConversationRef, IdentityChangedError, MEMBERS_PAGE_SIZE, SendFailedError, UntrustedKeyError, fetchRecipients, openMessage, fromWireKey, openV2, prepareMessage, sortedLeaves, unb64, sendMessage, sendPrepared, textOf, timeOrderedUUID } from '../src/index.js';
import { FakeServer, type FakeUser, storedKeys } from './fakeserver.js';
import { flip } from './helpers.js';

const noDelay = { retryDelay: () => 0 };

// Every member opens the stored message with its current key.
async function assertOpensForAll(s: FakeServer, id: string, members: FakeUser[], sender: FakeUser, cid: string, text: string): Promise<void> {
  const m = s.messages.get(id);
  assert.ok(m, `message ${id} stored`);
  for (const u of members) {
    const k: ReturnType<typeof storedKeys>[number] | undefined = storedKeys(m.input).find((x) => x.userId === u.id);
    assert.ok(k, `${u.username} is a recipient`);
    assert.equal(k.keyId, u.keyId, `${u.username}'s current key`);
    const meta = { kind: 'msg' as const, objectId: id, senderId: sender.id, conversationId: cid, attachmentId: '', name: '', mimeType: '' };
    const leaves = sortedLeaves(storedKeys(m.input).map(fromWireKey));
    const received: ReceivedV2 = { ciphertext: unb64(m.input['ciphertext'] as string), nonce: unb64(m.input['nonce'] as string), myKey: fromWireKey(k), keyDigests: leaves, signature: unb64(m.input['signature'] as string) };
    assert.equal(textOf(await openV2(meta, received, sender.identity!.publicKey, u.kp)), text);
  }
}

test('room: recipients come from every page of membersConnection', async () => {
  const s = new FakeServer();
  const alice = s.addUser('alice');
  const others = Array.from({ length: MEMBERS_PAGE_SIZE + 2 }, (_, i) => s.addUser(`u${i}`));
  const roomId = s.room(alice, ...others);
  const rs = await fetchRecipients(s.client(alice), alice.id, { roomId });
  assert.equal(rs.length, MEMBERS_PAGE_SIZE + 3);
  assert.deepEqual(s.calls.map((c) => [c.op, c.vars['first'], c.vars['after']]), [['RoomMembers', MEMBERS_PAGE_SIZE, null], ['RoomMembers', MEMBERS_PAGE_SIZE, String(MEMBERS_PAGE_SIZE)]]);
  assert.ok(!s.calls.some((c) => c.op === 'Room'), 'Room.members is not used');
});

test('room: a send reaches every member, the sender included', async () => {
  const s = new FakeServer();
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((n) => s.addUser(n)) as [FakeUser, FakeUser, FakeUser];
  const roomId = s.room(alice, bob, carol);
  const client = s.client(alice);
  const me = await s.account(alice);
  const m = await sendMessage(client, me, { roomId }, 'hello ✓', noDelay);
  assert.equal(m.sender.id, alice.id);
  await assertOpensForAll(s, m.id, [alice, bob, carol], alice, roomId, 'hello ✓');
  // The answer opens too, with the sender's own key ring.
  assert.equal(m.version, 2);
  assert.deepEqual(await openMessage(m, (kid) => alice.ring.get(kid), [alice.identity!.publicKey]), { text: 'hello ✓', verified: true });
  await assert.rejects(openMessage(m, () => null, [alice.identity!.publicKey]), CannotOpenError);
});

test('a lost answer is retried with the same input: one stored message', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  s.faults.sendMessage = ['lose-answer', 'network'];
  const me = await s.account(alice);
  const m = await sendMessage(s.client(alice), me, { roomId }, 'once', noDelay);
  const sends = s.calls.filter((c) => c.op === 'SendMessage');
  assert.equal(sends.length, 3);
  assert.deepEqual(sends[1]!.vars, sends[0]!.vars, 'the retry sends the same input');
  assert.deepEqual(sends[2]!.vars, sends[0]!.vars);
  assert.equal(s.messages.size, 1);
  assert.equal(m.id, (sends[0]!.vars['input'] as { id: string }).id);
});

test('stale keys: refetch, reseal under the same id, send again', async () => {
  const s = new FakeServer();
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((n) => s.addUser(n)) as [FakeUser, FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  const client = s.client(alice);
  const me = await s.account(alice);
  const p = await prepareMessage(client, me, { roomId }, 'after the rotation');
  // Between the key fetch and the send, bob rotates and carol joins.
  s.beforeNextSend = () => {
    s.rotate(bob);
    s.rooms.get(roomId)!.push(carol.id);
  };
  const resealed: string[] = [];
  const m = await sendPrepared(client, me, p, { ...noDelay, onResealed: (q) => resealed.push(q.input.ciphertext) });
  assert.equal(m.id, p.id, 'same id');
  assert.equal(resealed.length, 1);
  assert.notEqual(resealed[0], p.input.ciphertext, 'sealed again');
  assert.deepEqual(s.calls.map((c) => c.op), ['RoomMembers', 'SendMessage', 'RoomMembers', 'SendMessage']);
  await assertOpensForAll(s, m.id, [alice, bob, carol], alice, roomId, 'after the rotation');
});

test('a stored send whose answer was lost, then stale keys: CONFLICT resolves to the stored message', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  const client = s.client(alice);
  const me = await s.account(alice);
  const p = await prepareMessage(client, me, { roomId }, 'stored first');
  s.faults.sendMessage = ['lose-answer'];
  await assert.rejects(sendPrepared(client, me, p, { networkRetries: 0 }), SendFailedError);
  assert.equal(s.messages.size, 1, 'the first attempt was stored');
  s.rotate(bob);
  const m = await sendPrepared(client, me, p, noDelay);
  assert.equal(m.id, p.id);
  assert.equal(m.ciphertext, p.input.ciphertext, 'the stored message, not the reseal');
  assert.deepEqual(s.calls.slice(-4).map((c) => c.op), ['SendMessage', 'RoomMembers', 'SendMessage', 'MessageById']);
});

test('other errors fail with the latest prepared message; a later retry sends it unchanged', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  const client = s.client(alice);
  const me = await s.account(alice);
  s.faults.sendMessage = ['forbidden'];
  const err = await sendMessage(client, me, { roomId }, 'x', noDelay).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SendFailedError, String(err));
  assert.equal(s.calls.filter((c) => c.op === 'SendMessage').length, 1, 'FORBIDDEN is not retried');
  const m = await sendPrepared(client, me, err.prepared, noDelay);
  assert.equal(m.ciphertext, err.prepared.input.ciphertext);
  // Reseals are bounded: a member who rotates before every send makes it give up.
  const p = await prepareMessage(client, me, { roomId }, 'y');
  let n = 0;
  const rotateEverySend = () => {
    n++;
    s.rotate(bob);
    s.beforeNextSend = rotateEverySend;
  };
  s.beforeNextSend = rotateEverySend;
  await assert.rejects(sendPrepared(client, me, p, { ...noDelay, reseals: 2 }), SendFailedError);
  assert.equal(n, 3);
  s.beforeNextSend = null;
});

test('direct: sealed for both users, conversation id is the addressee', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const conv: ConversationRef = { userId: bob.id };
  const me = await s.account(alice);
  const m = await sendMessage(s.client(alice), me, conv, 'hi bob', noDelay);
  assert.equal(m.recipient?.id, bob.id);
  await assertOpensForAll(s, m.id, [alice, bob], alice, bob.id, 'hi bob');
  await assert.rejects(prepareMessage(s.client(alice), me, { userId: alice.id }, 'me'), /yourself/);
  await assert.rejects(prepareMessage(s.client(alice), me, { userId: '00000000-0000-4000-8000-000000000000' }, 'nobody'), /not found/);
});

test('certificates: every recipient\'s key must verify against its pinned identity key', async () => {
  const s = new FakeServer();
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((n) => s.addUser(n)) as [FakeUser, FakeUser, FakeUser];
  const roomId = s.room(alice, bob, carol);
  const client = s.client(alice);
  const me = await s.account(alice);
  await sendMessage(client, me, { roomId }, 'pins bob and carol', noDelay);
  assert.ok(await me.store.getPin(alice.id, bob.id), 'bob pinned on first use');

  // An ordinary rotation (next seq, certified by the pinned key) needs no warning.
  s.rotate(bob);
  await sendMessage(client, me, { roomId }, 'after bob rotated', noDelay);
  assert.equal((await me.store.getPin(alice.id, bob.id))?.highestSeq, 2);

  const refused = async (reason: string, userId: string) => {
    const before = s.calls.filter((c) => c.op === 'SendMessage').length;
    const err = await prepareMessage(client, me, { roomId }, 'x').then(() => null, (e: unknown) => e);
    assert.ok(err instanceof UntrustedKeyError, `${reason}: ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.equal(err.userId, userId);
    assert.match(err.message, new RegExp(`cannot seal to ${s.users.get(userId)!.username}:`), 'names the user');
    assert.equal(s.calls.filter((c) => c.op === 'SendMessage').length, before, 'nothing sent');
  };

  // A certificate that does not verify (signed by another key).
  const good = { kp: bob.kp, keyId: bob.keyId, cert: bob.certificate, seq: bob.seq };
  bob.certificate = certifyKemKey(generateIdentity(), bob.kp.algorithm, bob.seq, bob.kp.publicKey);
  await refused('bad-certificate', bob.id);
  // A certificate for another seq than the one presented.
  bob.certificate = good.cert;
  bob.seq = 3;
  await refused('bad-certificate', bob.id);
  // An older key presented again as current: certified, but seq 1 < 2.
  const old = bob.ring;
  s.rotate(bob, 1);
  await refused('lower-seq', bob.id);
  // The same seq as the key seen, with another key.
  s.rotate(bob, 2);
  await refused('reused-seq', bob.id);
  // Back to the real current key: fine again.
  Object.assign(bob, { kp: good.kp, keyId: good.keyId, certificate: good.cert, seq: good.seq, ring: old });
  await sendMessage(client, me, { roomId }, 'all good', noDelay);

  // A member without an identity key (an account from before version 2) is named.
  const dave = s.addUser('dave', { v1: true });
  s.rooms.get(roomId)!.push(dave.id);
  await refused('no-certificate', dave.id);
});

test('identity change: a typed error until accepted, then sealing resumes', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const client = s.client(alice);
  const me = await s.account(alice);
  await sendMessage(client, me, { userId: bob.id }, 'first', noDelay);
  const pinned = (await me.store.getPin(alice.id, bob.id))!.identityKey;
  const carol = s.addUser('carol');
  await sendMessage(client, me, { userId: carol.id }, 'pins carol', noDelay);
  assert.deepEqual(await checkPinnedContacts(client, me), [], 'nothing changed yet');
  s.resetIdentity(bob);
  assert.deepEqual(await checkPinnedContacts(client, me), [{ userId: bob.id, username: 'bob', identityKey: bob.identity!.publicKey }], 'found at start-up');
  const err = await sendMessage(client, me, { userId: bob.id }, 'second', noDelay).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof IdentityChangedError, String(err));
  assert.equal(err.username, 'bob');
  assert.deepEqual(err.identityKey, bob.identity!.publicKey);
  assert.deepEqual((await me.store.getPin(alice.id, bob.id))!.identityKey, pinned, 'the pin stays until accepted');
  // A rotation under the new identity does not get past the old pin either.
  s.rotate(bob);
  await assert.rejects(prepareMessage(client, me, { userId: bob.id }, 'third'), IdentityChangedError);
  await me.store.acceptIdentity(alice.id, bob.id, err.identityKey);
  await sendMessage(client, me, { userId: bob.id }, 'after accepting', noDelay);
  assert.deepEqual(await me.store.pinnedKeys(alice.id, bob.id), [bob.identity!.publicKey, pinned], 'the old key is kept for old signatures');
});

test('opening: a signature verifies against the pinned key only; version 1 is "sender not verified"', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  const bobMe = await s.account(bob);
  const aliceMe = await s.account(alice);
  const sent = await sendMessage(s.client(alice), aliceMe, { roomId }, 'signed by alice', noDelay);
  // Bob reads it from the server (MessageById), so it carries his myKey.
  const { data } = await s.client(bob).query({ query: MessageByIdDocument, variables: { id: sent.id } });
  const m = data!.message!;
  const ring = (kid: string) => bob.ring.get(kid);
  assert.deepEqual(await readMessage(s.client(bob), bobMe, m, ring), { text: 'signed by alice', verified: true }, 'pinned on first use');
  await assert.rejects(openMessage(m, ring, [generateIdentity().publicKey]), CannotOpenError, 'another identity key');
  await assert.rejects(openMessage(m, ring, []), CannotOpenError, 'no pinned key');
  await assert.rejects(openMessage({ ...m, signature: b64(flip(unb64(m.signature!))) }, ring, [alice.identity!.publicKey]), CannotOpenError, 'a flipped signature');
  await assert.rejects(openMessage({ ...m, attachmentId: '3f1e2d3c-0000-4000-8000-000000000000' }, ring, [alice.identity!.publicKey]), CannotOpenError, 'another attachment id');
  await assert.rejects(openMessage({ ...m, keyDigests: [...m.keyDigests!].reverse() }, ring, [alice.identity!.publicKey]), CannotOpenError, 'the leaves in another order');
  await assert.rejects(openMessage({ ...m, keyDigests: null }, ring, [alice.identity!.publicKey]), CannotOpenError, 'no leaves');
  await assert.rejects(openMessage({ ...m, version: 3 }, ring, [alice.identity!.publicKey]), CannotOpenError, 'an unknown version');

  // A server relabelling it as version 1 gets nowhere (v2 labels); a real
  // version 1 message opens, marked unverified.
  await assert.rejects(openMessage({ ...m, version: 1, signature: null, keyDigests: null }, ring, [alice.identity!.publicKey]), CannotOpenError);
  const h = { kind: 'msg' as const, objectId: randomUUID(), senderId: alice.id, conversationId: roomId };
  const v1 = toWire(await sealV1(h, 'old times', [{ userId: bob.id, keyId: bob.keyId, algorithm: bob.kp.algorithm, publicKey: bob.kp.publicKey }]));
  const old = { ...m, id: h.objectId, version: 1, signature: null, keyDigests: null, attachmentId: null, ciphertext: v1.ciphertext, nonce: v1.nonce, myKey: { ...v1.keys[0]!, readAt: null } };
  assert.deepEqual(await openMessage(old, ring), { text: 'old times', verified: false });

  // After bob accepts a new identity key of alice, what she signed before still verifies.
  s.resetIdentity(alice);
  await bobMe.store.acceptIdentity(bob.id, alice.id, alice.identity!.publicKey);
  assert.equal((await readMessage(s.client(bob), bobMe, m, ring)).verified, true);
});

test('identity change of a member beyond the first page of members refuses sealing to the room', async () => {
  const s = new FakeServer();
  const alice = s.addUser('alice');
  const others = Array.from({ length: MEMBERS_PAGE_SIZE + 2 }, (_, i) => s.addUser(`u${i}`));
  const roomId = s.room(alice, ...others);
  const client = s.client(alice);
  const me = await s.account(alice);
  // The first send pins every member, the last page's included.
  await sendMessage(client, me, { roomId }, 'hello all', noDelay);
  const late = others[others.length - 1]!;
  assert.ok(await me.store.getPin(alice.id, late.id), 'a member of the second page is pinned');
  s.resetIdentity(late);
  const err = await prepareMessage(client, me, { roomId }, 'hello again').then(() => null, (e: unknown) => e);
  assert.ok(err instanceof IdentityChangedError, String(err));
  assert.equal(err.userId, late.id);
  assert.deepEqual(await checkPinnedContacts(client, me), [{ userId: late.id, username: late.username, identityKey: late.identity!.publicKey }], 'found at start-up too');
  await me.store.acceptIdentity(alice.id, late.id, err.identityKey);
  await sendMessage(client, me, { roomId }, 'after accepting', noDelay);
});

test('message ids are time-ordered (version 7) UUIDs: the time in their first 48 bits, sortable as text', () => {
  const canonical = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const at = Date.UTC(2026, 10, 30, 17, 45, 0, 123);
  const id = timeOrderedUUID(() => new Uint8Array(16).fill(0xff), at);
  assert.match(id, canonical);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
  assert.equal(id, `${at.toString(16).padStart(12, '0').slice(0, 8)}-${at.toString(16).padStart(12, '0').slice(8)}-7fff-bfff-ffffffffffff`);
  const later = timeOrderedUUID(undefined, at + 1);
  assert.match(later, canonical);
  assert.ok(id < later, `${id} sorts before ${later}`);
  assert.match(timeOrderedUUID(), canonical);
});

test('a message sealed without an id gets a time-ordered one', async () => {
  const s = new FakeServer();
  const [alice, bob] = ['alice', 'bob'].map((n) => s.addUser(n)) as [FakeUser, FakeUser];
  const roomId = s.room(alice, bob);
  const before = Date.now();
  const p = await prepareMessage(s.client(alice), await s.account(alice), { roomId }, 'hello');
  const ms = parseInt(p.id.slice(0, 8) + p.id.slice(9, 13), 16);
  assert.equal(p.id[14], '7', `${p.id} is a version 7 UUID`);
  assert.ok(ms >= before && ms <= Date.now(), `${p.id} carries the time it was made`);
});
