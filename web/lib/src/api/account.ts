// The keys of the signed-in account (PROTOCOL-V2 §1, §2, §6): registering
// with an identity key and a certified first KEM key, rotating with the next
// seq, setting an identity key (an account from before version 2, or starting
// over without a backup), and the key backup: created, replaced, resealed on
// every rotation, deleted, and restored on a new device. Secret seeds go to
// the KeyStore (IndexedDB) and leave the device only inside a sealed backup.

import type { ApolloClient } from '@apollo/client';
import { type BackupKey, newBackupKey, openBackupWithKey, sealBackupWithKey } from '../crypto/backup.js';
import { b64, equalBytes, unb64 } from '../crypto/bytes.js';
import { type IdentityKeyPair, certifyKemKey, generateIdentity, identityFromSeed } from '../crypto/identity.js';
import { type Algorithm, generateKeyPair } from '../crypto/kem.js';
import type { KeyStore } from '../storage/keystore.js';
import {
  DeleteKeyBackupDocument, KeyBackupDocument, MeDocument, type RegisterMutation, RegisterDocument, RotateKeyDocument, SetIdentityKeyDocument, SetKeyBackupDocument,
  type UserFieldsFragment, UserFieldsFragmentDoc,
} from './generated/graphql.js';

export interface RegisterOptions {
  readonly username: string;
  readonly password: string;
  /** The KEM algorithm of the first key (ML_KEM_768 by default). */
  readonly algorithm?: Algorithm;
}

// The device pins its own identity key and notes its own certified key, so
// that sealing to itself passes the same checks as sealing to anyone.
async function pinOwn(store: KeyStore, userId: string, identity: IdentityKeyPair, seq: number, publicKey: Uint8Array): Promise<void> {
  await store.acceptIdentity(userId, userId, identity.publicKey);
  await store.noteKemKey(userId, userId, seq, publicKey);
}

/**
 * Registers with keys made here: an ML-DSA-65 identity key and a KEM key it
 * certifies with seq 1. The seeds are stored only once the server has
 * accepted the account (the KEM key under the id the server gave it).
 */
export async function registerAccount(client: ApolloClient, store: KeyStore, opts: RegisterOptions): Promise<RegisterMutation['register']> {
  const algorithm = opts.algorithm ?? 'ML_KEM_768';
  const identity = generateIdentity();
  const kp = generateKeyPair(algorithm);
  const certificate = certifyKemKey(identity, algorithm, 1, kp.publicKey);
  const { data } = await client.mutate({
    mutation: RegisterDocument,
    variables: {
      input: {
        username: opts.username,
        password: opts.password,
        publicKey: b64(kp.publicKey),
        keyAlgorithm: algorithm,
        identityKey: b64(identity.publicKey),
        publicKeySignature: b64(certificate),
      },
    },
  });
  const p = data?.register;
  if (!p?.user.publicKey) throw new Error('register: the server kept no key');
  await store.putIdentity(p.user.id, identity);
  await store.putKemKey(p.user.id, p.user.publicKey.id, kp);
  await pinOwn(store, p.user.id, identity, 1, kp.publicKey);
  return p;
}

function cacheUser(client: ApolloClient, u: UserFieldsFragment): void {
  client.cache.writeFragment({ fragment: UserFieldsFragmentDoc, fragmentName: 'UserFields', data: u });
}

async function me(client: ApolloClient): Promise<UserFieldsFragment> {
  const { data } = await client.query({ query: MeDocument, fetchPolicy: 'network-only' });
  if (!data?.me) throw new Error('not signed in');
  return data.me;
}

/** The account's identity key pair on this device, checked against the one the server presents. */
async function ownIdentity(store: KeyStore, user: UserFieldsFragment): Promise<IdentityKeyPair> {
  const identity = await store.getIdentity(user.id);
  if (!identity) throw new Error('this browser does not hold your identity key: restore it from your key backup first');
  if (!user.identityKey || !equalBytes(unb64(user.identityKey.key), identity.publicKey)) {
    throw new Error('your identity key was replaced on another device: sign in again and restore from your key backup');
  }
  return identity;
}

/**
 * Rotates the account's KEM key: a new key certified with the current key's
 * seq + 1 (read from the server first), stored here, and the key backup
 * resealed with it when this device keeps the backup's key. Returns the user.
 */
export async function rotateAccountKey(client: ApolloClient, store: KeyStore, algorithm?: Algorithm): Promise<UserFieldsFragment> {
  const user = await me(client);
  const identity = await ownIdentity(store, user);
  const alg = algorithm ?? (user.publicKey?.algorithm as Algorithm | undefined) ?? 'ML_KEM_768';
  const seq = (user.publicKey?.seq ?? 0) + 1;
  const kp = generateKeyPair(alg);
  const signature = b64(certifyKemKey(identity, alg, seq, kp.publicKey));
  // Not cached until the key is stored: an app watching the user's current
  // key must never see a key this device does not hold yet.
  const { data } = await client.mutate({ mutation: RotateKeyDocument, variables: { publicKey: b64(kp.publicKey), algorithm: alg, seq, signature }, fetchPolicy: 'no-cache' });
  const updated = data?.rotateKey;
  if (!updated?.publicKey) throw new Error('rotateKey: no key in the answer');
  await store.putKemKey(user.id, updated.publicKey.id, kp);
  await pinOwn(store, user.id, identity, seq, kp.publicKey);
  cacheUser(client, updated);
  await refreshBackup(client, store, user.id);
  return updated;
}

export interface SetIdentityOptions {
  /** Needed when the account already has an identity key (starting over). */
  readonly password?: string;
  readonly algorithm?: Algorithm;
}

/**
 * Sets a new identity key with a new KEM key it certifies: for an account made
 * before version 2 (at its first sign-in here), or to start over on a device
 * without a backup (which needs the password, makes messages sealed to the old
 * keys unreadable here, and shows every contact a warning).
 */
export async function setAccountIdentity(client: ApolloClient, store: KeyStore, opts: SetIdentityOptions = {}): Promise<UserFieldsFragment> {
  const user = await me(client);
  const alg = opts.algorithm ?? (user.publicKey?.algorithm as Algorithm | undefined) ?? 'ML_KEM_768';
  const identity = generateIdentity();
  const kp = generateKeyPair(alg);
  const seq = (user.publicKey?.seq ?? 0) + 1;
  const signature = b64(certifyKemKey(identity, alg, seq, kp.publicKey));
  const { data } = await client.mutate({
    mutation: SetIdentityKeyDocument,
    variables: { identityKey: b64(identity.publicKey), publicKey: b64(kp.publicKey), algorithm: alg, seq, signature, ...(opts.password ? { password: opts.password } : {}) },
    fetchPolicy: 'no-cache',
  });
  const updated = data?.setIdentityKey;
  if (!updated?.publicKey) throw new Error('setIdentityKey: no key in the answer');
  await store.putIdentity(user.id, identity);
  await store.putKemKey(user.id, updated.publicKey.id, kp);
  await pinOwn(store, user.id, identity, seq, kp.publicKey);
  cacheUser(client, updated);
  // A backup of the old identity no longer restores this account.
  await store.deleteBackupKey(user.id);
  return updated;
}

/** Whether the account has a key backup on the server. */
export async function hasKeyBackup(client: ApolloClient): Promise<boolean> {
  const { data } = await client.query({ query: KeyBackupDocument, fetchPolicy: 'network-only' });
  return typeof data?.keyBackup === 'string' && data.keyBackup !== '';
}

async function storeBackup(client: ApolloClient, store: KeyStore, userId: string, key: BackupKey): Promise<void> {
  const contents = await store.backupContents(userId);
  if (!contents) throw new Error('this browser does not hold your identity key: there is nothing to back up');
  const sealed = await sealBackupWithKey(userId, key, contents);
  await client.mutate({ mutation: SetKeyBackupDocument, variables: { backup: sealed } });
  await store.putBackupKey({ userId, ...key });
}

/**
 * Creates or replaces the key backup, sealed with secret (a recovery key from
 * generateRecoveryKey, or a passphrase of at least 12 characters), and keeps
 * the derived key here so that rotations reseal it.
 */
export async function createKeyBackup(client: ApolloClient, store: KeyStore, userId: string, secret: string): Promise<void> {
  await storeBackup(client, store, userId, await newBackupKey(secret));
}

/** Reseals the backup with the keys held now, if this device keeps the backup's key; whether it did. */
export async function refreshBackup(client: ApolloClient, store: KeyStore, userId: string): Promise<boolean> {
  const key = await store.getBackupKey(userId);
  if (!key) return false;
  await storeBackup(client, store, userId, key);
  return true;
}

/** Deletes the key backup on the server and its key here. */
export async function deleteKeyBackup(client: ApolloClient, store: KeyStore, userId: string): Promise<void> {
  await client.mutate({ mutation: DeleteKeyBackupDocument });
  await store.deleteBackupKey(userId);
}

/** The backup's identity key is not the account's current one (it was replaced since). */
export class StaleBackupError extends Error {
  constructor() {
    super('this backup holds an identity key that is no longer your account\'s (it was replaced after the backup was made)');
    this.name = 'StaleBackupError';
  }
}

/**
 * Restores this device's keys from the account's backup: CannotOpenBackupError
 * for a wrong secret (or a damaged backup), StaleBackupError when its identity
 * key is not the account's current one; an error when there is no backup.
 */
export async function restoreKeyBackup(client: ApolloClient, store: KeyStore, userId: string, secret: string): Promise<void> {
  const { data } = await client.query({ query: KeyBackupDocument, fetchPolicy: 'network-only' });
  const sealed = data?.keyBackup;
  if (!sealed) throw new Error('there is no key backup for this account');
  const { contents, key } = await openBackupWithKey(userId, secret, sealed);
  const user = await me(client);
  const identity = identityFromSeed(contents.identitySeed);
  if (!user.identityKey || !equalBytes(unb64(user.identityKey.key), identity.publicKey)) throw new StaleBackupError();
  await store.restore(userId, contents);
  await store.putBackupKey({ userId, ...key });
  await store.acceptIdentity(userId, userId, identity.publicKey);
}
