// The key store on IndexedDB (fake-indexeddb in Node): keys survive a reopen,
// a backup's contents round-trip through it, pins follow trust on first use.

import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyStore, generateIdentity, generateKeyPair, openBackup, generateRecoveryKey, sealBackup } from '../src/index.js';

const alice = '11111111-1111-4111-8111-111111111111';
const bob = '22222222-2222-4222-8222-222222222222';

test('keys survive closing and reopening; the newest is last', async () => {
  const ks = await KeyStore.open('t-keys');
  const id = generateIdentity();
  const k1 = generateKeyPair('ML_KEM_768');
  const k2 = generateKeyPair('X_WING');
  await ks.putIdentity(alice, id);
  await ks.putKemKey(alice, 'k1', k1, 1);
  await ks.putKemKey(alice, 'k2', k2, 2);
  await ks.putKemKey(bob, 'kb', generateKeyPair(), 3);
  ks.close();

  const again = await KeyStore.open('t-keys');
  assert.deepEqual((await again.getIdentity(alice))?.publicKey, id.publicKey);
  assert.deepEqual((await again.getKemKey(alice, 'k2'))?.publicKey, k2.publicKey);
  assert.equal(await again.getKemKey(alice, 'kb'), null, 'another user\'s key');
  assert.deepEqual((await again.listKemKeys(alice)).map((k) => k.keyId), ['k1', 'k2']);
  assert.deepEqual([...(await again.keyRing(alice)).keys()], ['k1', 'k2']);

  await again.forgetUser(alice);
  assert.equal(await again.getIdentity(alice), null);
  assert.deepEqual(await again.listKemKeys(alice), []);
  assert.equal((await again.listKemKeys(bob)).length, 1);
  again.close();
});

test('backup contents from the store, sealed, opened and restored on a "new device"', async () => {
  const ks = await KeyStore.open('t-old-device');
  await ks.putIdentity(alice, generateIdentity());
  await ks.putKemKey(alice, 'k1', generateKeyPair('ML_KEM_768'), 1);
  await ks.putKemKey(alice, 'k2', generateKeyPair('X_WING'), 2);
  const contents = await ks.backupContents(alice);
  assert.ok(contents);
  assert.equal(await ks.backupContents(bob), null);
  const secret = generateRecoveryKey();
  const sealed = await sealBackup(alice, secret, contents);

  const fresh = await KeyStore.open('t-new-device');
  await fresh.restore(alice, await openBackup(alice, secret, sealed));
  assert.deepEqual(await fresh.backupContents(alice), contents);
  assert.deepEqual((await fresh.listKemKeys(alice)).map((k) => k.keyId), ['k1', 'k2'], 'the current key stays the newest');
  ks.close();
  fresh.close();
});

test('pins: first use, same, changed until accepted; verification; seqs never go back', async () => {
  const ks = await KeyStore.open('t-pins');
  const k1 = generateIdentity().publicKey;
  const k2 = generateIdentity().publicKey;
  assert.equal(await ks.checkIdentity(alice, bob, k1), 'first-use');
  assert.equal(await ks.checkIdentity(alice, bob, k1), 'same');
  assert.ok(await ks.markVerified(alice, bob, k1));
  assert.equal((await ks.getPin(alice, bob))?.verified, true);
  assert.equal(await ks.checkIdentity(alice, bob, k2), 'changed');
  assert.equal(await ks.checkIdentity(alice, bob, k2), 'changed', 'still changed until the user accepts');
  assert.ok(!(await ks.markVerified(alice, bob, k2)), 'only the pinned key can be verified');
  assert.ok(await ks.noteKemSeq(alice, bob, 3));
  assert.ok(!(await ks.noteKemSeq(alice, bob, 2)), 'an older key offered as current');
  await ks.acceptIdentity(alice, bob, k2);
  assert.equal(await ks.checkIdentity(alice, bob, k2), 'same');
  assert.deepEqual(await ks.getPin(alice, bob), { userId: alice, contactId: bob, identityKey: k2, verified: false, highestSeq: 0 });
  assert.equal(await ks.checkIdentity(bob, alice, k1), 'first-use', 'pins are per local user');
  ks.close();
});
