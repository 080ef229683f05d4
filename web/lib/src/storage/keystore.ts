// The device's secret keys and pinned identity keys, on IndexedDB: never in
// localStorage (which every script of the origin reads as text and which
// browsers may sync), and never sent anywhere except inside a sealed backup.

import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import type { BackupContents } from '../crypto/backup.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { KdfParams } from '../crypto/backup.js';
import { equalBytes } from '../crypto/bytes.js';
import { type IdentityKeyPair, identityFromSeed } from '../crypto/identity.js';
import { type Algorithm, type KeyPair, keyPairFromSeed } from '../crypto/kem.js';

/** A KEM key of the device's user, as stored. */
export interface StoredKemKey {
  readonly userId: string;
  readonly keyId: string;
  readonly algorithm: Algorithm;
  readonly seed: Uint8Array;
  /** When it was stored (ms since the epoch): the newest is the current key. */
  readonly storedAt: number;
}

/** What this device remembers of another user's identity key (PROTOCOL-V2 §4). */
export interface Pin {
  readonly userId: string;
  readonly contactId: string;
  readonly identityKey: Uint8Array;
  /** Whether the user compared safety numbers and marked it verified. */
  readonly verified: boolean;
  /** The highest certificate seq seen for the contact's KEM keys (0: none yet). */
  readonly highestSeq: number;
  /** SHA-256 of the KEM public key certified with highestSeq (null: none yet). */
  readonly highestKey?: Uint8Array | null;
  /**
   * Identity keys pinned before the user accepted a change: messages the
   * contact signed with them still verify (they were pinned when written).
   */
  readonly formerKeys?: readonly Uint8Array[];
}

/** The outcome of checking a presented identity key against the pin. */
export type PinCheck = 'first-use' | 'same' | 'changed';

/**
 * The outcome of noting a contact's certified KEM key (PROTOCOL-V2 §2):
 * 'lower' for a seq below the highest seen (an old key presented again as
 * current), 'reused' for the highest seq seen with another public key.
 */
export type SeqCheck = 'ok' | 'lower' | 'reused';

/**
 * The Argon2id key of the user's backup secret, with the salt and parameters
 * it was derived with: a key rotation reseals the backup with it (PROTOCOL-V2
 * §6: a new backup on every rotation) without asking for the secret again. It
 * protects nothing that the seeds beside it do not already give away.
 */
export interface StoredBackupKey {
  readonly userId: string;
  readonly key: Uint8Array;
  readonly salt: Uint8Array;
  readonly params: KdfParams;
}

interface Schema extends DBSchema {
  identities: { key: string; value: { userId: string; seed: Uint8Array } };
  kemKeys: { key: [string, string]; value: StoredKemKey; indexes: { byUser: string } };
  pins: { key: [string, string]; value: Pin };
  backupKeys: { key: string; value: StoredBackupKey };
}

export const DEFAULT_DB_NAME = 'qchat-keys';

/** The key store of one device (one IndexedDB database), for any number of local users. */
export class KeyStore {
  private constructor(private readonly db: IDBPDatabase<Schema>) {}

  /** Opens (creating on first use) the database; IndexedDB must exist (a browser, or fake-indexeddb in Node). */
  static async open(name: string = DEFAULT_DB_NAME): Promise<KeyStore> {
    const db = await openDB<Schema>(name, 2, {
      upgrade(db, oldVersion) {
        if (oldVersion < 1) {
          db.createObjectStore('identities', { keyPath: 'userId' });
          db.createObjectStore('kemKeys', { keyPath: ['userId', 'keyId'] }).createIndex('byUser', 'userId');
          db.createObjectStore('pins', { keyPath: ['userId', 'contactId'] });
        }
        if (oldVersion < 2) db.createObjectStore('backupKeys', { keyPath: 'userId' });
      },
    });
    return new KeyStore(db);
  }

  close(): void {
    this.db.close();
  }

  async putIdentity(userId: string, identity: IdentityKeyPair): Promise<void> {
    await this.db.put('identities', { userId, seed: Uint8Array.from(identity.seed) });
  }

  async getIdentity(userId: string): Promise<IdentityKeyPair | null> {
    const r = await this.db.get('identities', userId);
    return r ? identityFromSeed(r.seed) : null;
  }

  /** Stores a KEM key; the newest stored is the current one. */
  async putKemKey(userId: string, keyId: string, kp: KeyPair, storedAt: number = Date.now()): Promise<void> {
    await this.db.put('kemKeys', { userId, keyId, algorithm: kp.algorithm, seed: Uint8Array.from(kp.seed), storedAt });
  }

  async getKemKey(userId: string, keyId: string): Promise<KeyPair | null> {
    const r = await this.db.get('kemKeys', [userId, keyId]);
    return r ? keyPairFromSeed(r.algorithm, r.seed) : null;
  }

  /** Every KEM key of userId, oldest first. */
  async listKemKeys(userId: string): Promise<StoredKemKey[]> {
    const all = await this.db.getAllFromIndex('kemKeys', 'byUser', userId);
    return all.sort((a, b) => a.storedAt - b.storedAt);
  }

  /** The key pairs of userId by key id, for opening messages (openMessage's lookup). */
  async keyRing(userId: string): Promise<Map<string, KeyPair>> {
    const ring = new Map<string, KeyPair>();
    for (const k of await this.listKemKeys(userId)) ring.set(k.keyId, keyPairFromSeed(k.algorithm, k.seed));
    return ring;
  }

  /** What a key backup of userId holds (PROTOCOL-V2 §6); null without an identity key. */
  async backupContents(userId: string): Promise<BackupContents | null> {
    const id = await this.db.get('identities', userId);
    if (!id) return null;
    const kemKeys = (await this.listKemKeys(userId)).map((k) => ({ keyId: k.keyId, algorithm: k.algorithm, seed: k.seed }));
    return { identitySeed: id.seed, kemKeys };
  }

  /** Stores what an opened backup holds, keeping the backup's order as the keys' age. */
  async restore(userId: string, c: BackupContents): Promise<void> {
    const tx = this.db.transaction(['identities', 'kemKeys'], 'readwrite');
    const base = Date.now() - c.kemKeys.length;
    await Promise.all([
      tx.objectStore('identities').put({ userId, seed: Uint8Array.from(c.identitySeed) }),
      ...c.kemKeys.map((k, i) => tx.objectStore('kemKeys').put({ userId, keyId: k.keyId, algorithm: k.algorithm, seed: Uint8Array.from(k.seed), storedAt: base + i })),
      tx.done,
    ]);
  }

  /**
   * Checks the identity key the server presents for contactId against the
   * pin (trust on first use): the first key is pinned; a different one is
   * 'changed' and stays unpinned until acceptIdentity.
   */
  async checkIdentity(userId: string, contactId: string, identityKey: Uint8Array): Promise<PinCheck> {
    const tx = this.db.transaction('pins', 'readwrite');
    const pin = await tx.store.get([userId, contactId]);
    if (!pin) {
      await tx.store.put({ userId, contactId, identityKey: Uint8Array.from(identityKey), verified: false, highestSeq: 0, highestKey: null, formerKeys: [] });
      await tx.done;
      return 'first-use';
    }
    await tx.done;
    return equalBytes(pin.identityKey, identityKey) ? 'same' : 'changed';
  }

  /** Every pin of userId (its own included). */
  async listPins(userId: string): Promise<Pin[]> {
    return this.db.getAll('pins', IDBKeyRange.bound([userId, ''], [userId, '\uffff']));
  }

  async getPin(userId: string, contactId: string): Promise<Pin | null> {
    return (await this.db.get('pins', [userId, contactId])) ?? null;
  }

  /**
   * The user accepts a changed identity key: it is pinned, unverified, and KEM
   * seqs start again; the key it replaces stays known for verifying what the
   * contact signed before.
   */
  async acceptIdentity(userId: string, contactId: string, identityKey: Uint8Array): Promise<void> {
    const tx = this.db.transaction('pins', 'readwrite');
    const pin = await tx.store.get([userId, contactId]);
    const former = pin && !equalBytes(pin.identityKey, identityKey) ? [...(pin.formerKeys ?? []), pin.identityKey] : (pin?.formerKeys ?? []);
    await tx.store.put({ userId, contactId, identityKey: Uint8Array.from(identityKey), verified: false, highestSeq: 0, highestKey: null, formerKeys: former });
    await tx.done;
  }

  /** Every identity key of contactId that was ever pinned, the current pin first; empty without a pin. */
  async pinnedKeys(userId: string, contactId: string): Promise<Uint8Array[]> {
    const pin = await this.getPin(userId, contactId);
    return pin ? [pin.identityKey, ...(pin.formerKeys ?? [])] : [];
  }

  /** Marks the pinned key verified (the safety numbers matched), if it is still identityKey. */
  async markVerified(userId: string, contactId: string, identityKey: Uint8Array, verified = true): Promise<boolean> {
    const tx = this.db.transaction('pins', 'readwrite');
    const pin = await tx.store.get([userId, contactId]);
    if (!pin || !equalBytes(pin.identityKey, identityKey)) {
      await tx.done;
      return false;
    }
    await tx.store.put({ ...pin, verified });
    await tx.done;
    return true;
  }

  /**
   * Records a contact's certified KEM key (PROTOCOL-V2 §2), whose certificate
   * the caller has verified against the pin: a seq below the highest seen is
   * 'lower', the highest seq with another public key 'reused'; a higher one
   * becomes the highest. Without a pin it is 'lower' (nothing to note it on).
   */
  async noteKemKey(userId: string, contactId: string, seq: number, publicKey: Uint8Array): Promise<SeqCheck> {
    const digest = sha256(publicKey);
    const tx = this.db.transaction('pins', 'readwrite');
    const pin = await tx.store.get([userId, contactId]);
    let out: SeqCheck = 'ok';
    if (!pin || seq < pin.highestSeq) out = 'lower';
    else if (seq === pin.highestSeq) out = pin.highestKey && equalBytes(pin.highestKey, digest) ? 'ok' : 'reused';
    else await tx.store.put({ ...pin, highestSeq: seq, highestKey: digest });
    await tx.done;
    return out;
  }

  /** Keeps the derived key of userId's backup secret (see StoredBackupKey). */
  async putBackupKey(k: StoredBackupKey): Promise<void> {
    await this.db.put('backupKeys', { userId: k.userId, key: Uint8Array.from(k.key), salt: Uint8Array.from(k.salt), params: { t: k.params.t, m: k.params.m, p: k.params.p } });
  }

  async getBackupKey(userId: string): Promise<StoredBackupKey | null> {
    return (await this.db.get('backupKeys', userId)) ?? null;
  }

  async deleteBackupKey(userId: string): Promise<void> {
    await this.db.delete('backupKeys', userId);
  }

  /** Forgets everything of userId on this device (its keys and its pins). */
  async forgetUser(userId: string): Promise<void> {
    const tx = this.db.transaction(['identities', 'kemKeys', 'pins', 'backupKeys'], 'readwrite');
    await tx.objectStore('identities').delete(userId);
    await tx.objectStore('backupKeys').delete(userId);
    await tx.objectStore('kemKeys').delete(IDBKeyRange.bound([userId, ''], [userId, '\uffff']));
    await tx.objectStore('pins').delete(IDBKeyRange.bound([userId, ''], [userId, '\uffff']));
    await tx.done;
  }
}
