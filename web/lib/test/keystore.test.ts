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

test('the backup key is kept per user and forgotten with the user', async () => {
  const ks = await KeyStore.open('t-backup-key');
  const key = { userId: alice, key: new Uint8Array(32).fill(7), salt: new Uint8Array(16).fill(1), params: { t: 2, m: 19456, p: 1 } };
  await ks.putBackupKey(key);
  assert.deepEqual(await ks.getBackupKey(alice), key);
  assert.equal(await ks.getBackupKey(bob), null);
  await ks.forgetUser(alice);
  assert.equal(await ks.getBackupKey(alice), null);
  await ks.putBackupKey(key);
  await ks.deleteBackupKey(alice);
  assert.equal(await ks.getBackupKey(alice), null);
  ks.close();
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
  const pk3 = generateKeyPair().publicKey;
  assert.equal(await ks.noteKemKey(alice, bob, 3, pk3), 'ok');
  assert.equal(await ks.noteKemKey(alice, bob, 3, pk3), 'ok', 'the same key again');
  assert.equal(await ks.noteKemKey(alice, bob, 3, generateKeyPair().publicKey), 'reused', 'another key under a seq already seen');
  assert.equal(await ks.noteKemKey(alice, bob, 2, generateKeyPair().publicKey), 'lower', 'an older key offered as current');
  assert.equal(await ks.noteKemKey(alice, 'nobody', 1, pk3), 'lower', 'no pin to note it on');
  await ks.acceptIdentity(alice, bob, k2);
  assert.equal(await ks.checkIdentity(alice, bob, k2), 'same');
  assert.deepEqual(await ks.getPin(alice, bob), { userId: alice, contactId: bob, identityKey: k2, verified: false, highestSeq: 0, highestKey: null, formerKeys: [k1] });
  assert.deepEqual(await ks.pinnedKeys(alice, bob), [k2, k1]);
  assert.equal(await ks.noteKemKey(alice, bob, 1, pk3), 'ok', 'seqs start again under the new identity');
  assert.equal(await ks.checkIdentity(bob, alice, k1), 'first-use', 'pins are per local user');
  ks.close();
});
