// Whom an envelope may be sealed to, and whose signature a reader trusts
// (PROTOCOL-V2 §2 and §4): every recipient's KEM key must carry a certificate
// that verifies against the identity key this device pinned for its user,
// with a seq that never goes back; a user whose identity key changed gets
// nothing sealed to it until the person accepts the new key.

import type { ApolloClient } from '@apollo/client';
import { unb64 } from '../crypto/bytes.js';
import type { Recipient } from '../crypto/envelope.js';
import { type IdentityKeyPair, verifyKemCertificate } from '../crypto/identity.js';
import { isAlgorithm } from '../crypto/kem.js';
import type { KeyStore } from '../storage/keystore.js';
import { type RecipientUserFieldsFragment, UsersDocument } from './generated/graphql.js';

/** The signed-in user of this device, as sending and opening need it. */
export interface Account {
  readonly userId: string;
  readonly store: KeyStore;
  /** The identity key pair, from the store (null on a device that has not restored it yet). */
  readonly identity: IdentityKeyPair | null;
}

/** A recipient as the API presents it: its current key with the key's certificate and the user's identity key. */
export interface CertifiedRecipient extends Recipient {
  readonly username: string;
  /** null for an account made before version 2 that has no identity key yet. */
  readonly identityKey: Uint8Array | null;
  /** null for a key published before version 2 (no certificate). */
  readonly seq: number | null;
  readonly certificate: Uint8Array | null;
}

/**
 * The server presents an identity key for a user that is not the one this
 * device pinned: nothing is sealed to that user until the person compares
 * safety numbers or accepts the new key (KeyStore.acceptIdentity).
 */
export class IdentityChangedError extends Error {
  readonly userId: string;
  readonly username: string;
  /** The identity key the server now presents. */
  readonly identityKey: Uint8Array;
  constructor(userId: string, username: string, identityKey: Uint8Array) {
    super(`${username}'s identity key has changed: accept the new key before sending to ${username}`);
    this.name = 'IdentityChangedError';
    this.userId = userId;
    this.username = username;
    this.identityKey = identityKey;
  }
}

/** Why a recipient's key is refused. */
export type UntrustedReason = 'no-certificate' | 'bad-certificate' | 'lower-seq' | 'reused-seq';

const reasons: Record<UntrustedReason, string> = {
  'no-certificate': 'has no identity key or no certified key yet (an account from before signed messages): nothing can be sealed to it until it signs in again',
  'bad-certificate': "has a key whose certificate does not verify against the identity key this device pinned",
  'lower-seq': 'is presented with an older key than one already seen',
  'reused-seq': 'is presented with a different key under a sequence number already seen',
};

/** A recipient whose key cannot be sealed to; the message names the user. */
export class UntrustedKeyError extends Error {
  readonly userId: string;
  readonly username: string;
  readonly reason: UntrustedReason;
  constructor(userId: string, username: string, reason: UntrustedReason) {
    super(`cannot seal to ${username}: ${username} ${reasons[reason]}`);
    this.name = 'UntrustedKeyError';
    this.userId = userId;
    this.username = username;
    this.reason = reason;
  }
}

/** A recipient from the API's RecipientUserFields; throws on a user without a key or with malformed base64. */
export function recipientFromApi(u: RecipientUserFieldsFragment): CertifiedRecipient {
  const k = u.publicKey;
  if (!k) throw new Error(`user ${u.username} has no public key`);
  if (!isAlgorithm(k.algorithm)) throw new Error(`user ${u.username}: unknown key algorithm ${k.algorithm}`);
  return {
    userId: u.id,
    username: u.username,
    keyId: k.id,
    algorithm: k.algorithm,
    publicKey: unb64(k.key),
    identityKey: u.identityKey ? unb64(u.identityKey.key) : null,
    seq: k.seq ?? null,
    certificate: k.signature ? unb64(k.signature) : null,
  };
}

// The device's own pin is its own identity key, not what the server says.
async function pinSelf(account: Account): Promise<void> {
  if (!account.identity) return;
  const pin = await account.store.getPin(account.userId, account.userId);
  if (!pin) await account.store.acceptIdentity(account.userId, account.userId, account.identity.publicKey);
}

/**
 * Checks one recipient before sealing: a certified key, an identity key equal
 * to the pin (pinned now on first use), a certificate that verifies against
 * the pin, and a seq not below (nor equal with another key to) the highest
 * seen. Throws IdentityChangedError or UntrustedKeyError.
 */
export async function checkRecipient(account: Account, r: CertifiedRecipient): Promise<void> {
  const { store, userId: self } = account;
  if (!r.identityKey || r.seq === null || !r.certificate) throw new UntrustedKeyError(r.userId, r.username, 'no-certificate');
  if (r.userId === self) await pinSelf(account);
  if ((await store.checkIdentity(self, r.userId, r.identityKey)) === 'changed') throw new IdentityChangedError(r.userId, r.username, r.identityKey);
  if (!verifyKemCertificate(r.identityKey, r.algorithm, r.seq, r.publicKey, r.certificate)) throw new UntrustedKeyError(r.userId, r.username, 'bad-certificate');
  const seq = await store.noteKemKey(self, r.userId, r.seq, r.publicKey);
  if (seq === 'lower') throw new UntrustedKeyError(r.userId, r.username, 'lower-seq');
  if (seq === 'reused') throw new UntrustedKeyError(r.userId, r.username, 'reused-seq');
}

/** Checks every recipient (checkRecipient), in order; the first refusal throws. */
export async function checkRecipients(account: Account, rs: readonly CertifiedRecipient[]): Promise<void> {
  for (const r of rs) await checkRecipient(account, r);
}

/**
 * The identity keys a sender's signature is verified with: every key this
 * device pinned for it (the current pin first). A sender not pinned yet is
 * pinned now from the server's answer (trust on first use); one without an
 * identity key has none, and nothing it signs verifies.
 */
export async function senderIdentityKeys(client: ApolloClient, account: Account, senderId: string): Promise<Uint8Array[]> {
  if (senderId === account.userId) await pinSelf(account);
  const pinned = await account.store.pinnedKeys(account.userId, senderId);
  if (pinned.length > 0) return pinned;
  const { data } = await client.query({ query: UsersDocument, variables: { ids: [senderId] }, fetchPolicy: 'network-only' });
  const ik = data?.users[0]?.identityKey;
  if (!ik) return [];
  const key = unb64(ik.key);
  await account.store.checkIdentity(account.userId, senderId, key);
  return account.store.pinnedKeys(account.userId, senderId);
}

/**
 * Compares the identity key the server now presents for userId with the pin:
 * 'changed' when they differ (show the warning), 'first-use' when it is now
 * pinned, 'same' otherwise, null when the user has no identity key.
 */
export async function checkContactIdentity(client: ApolloClient, account: Account, userId: string): Promise<{ check: 'first-use' | 'same' | 'changed'; username: string; identityKey: Uint8Array } | null> {
  const { data } = await client.query({ query: UsersDocument, variables: { ids: [userId] }, fetchPolicy: 'network-only' });
  const u = data?.users[0];
  if (!u?.identityKey) return null;
  const identityKey = unb64(u.identityKey.key);
  if (userId === account.userId) await pinSelf(account);
  return { check: await account.store.checkIdentity(account.userId, userId, identityKey), username: u.username, identityKey };
}

/** A contact whose presented identity key is not the pinned one. */
export interface ChangedIdentity {
  readonly userId: string;
  readonly username: string;
  readonly identityKey: Uint8Array;
}

// Users(ids) per request: well within the server's limits on ids and cost.
const USERS_BATCH = 25;

/**
 * Compares every contact this device pinned with the identity key the server
 * presents now: the ones that changed (while this page was closed, say), to
 * warn about at start-up.
 */
export async function checkPinnedContacts(client: ApolloClient, account: Account): Promise<ChangedIdentity[]> {
  const pins = (await account.store.listPins(account.userId)).filter((p) => p.contactId !== account.userId);
  const out: ChangedIdentity[] = [];
  for (let i = 0; i < pins.length; i += USERS_BATCH) {
    const batch = pins.slice(i, i + USERS_BATCH);
    const { data } = await client.query({ query: UsersDocument, variables: { ids: batch.map((p) => p.contactId) }, fetchPolicy: 'network-only' });
    for (const u of data?.users ?? []) {
      if (!u.identityKey) continue;
      const identityKey = unb64(u.identityKey.key);
      if ((await account.store.checkIdentity(account.userId, u.id, identityKey)) === 'changed') out.push({ userId: u.id, username: u.username, identityKey });
    }
  }
  return out;
}
