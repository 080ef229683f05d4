// A stand-in for the QChat server behind an Apollo link: just enough of
// members, keys and sendMessage (with the real server's recipient check, safe
// retry and CONFLICT) to test the library's sending logic without a network.

import { ApolloClient, ApolloLink, InMemoryCache } from '@apollo/client';
import { Observable } from 'rxjs';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  type Account, type IdentityKeyPair, type KeyPair, KeyStore, b64, certifyKemKey, fromWireKey, generateIdentity, generateKeyPair, hex, randomUUID, sortedLeaves, unb64, utf8,
  verifyEnvelope,
} from '../src/index.js';

export interface FakeUser {
  id: string;
  username: string;
  keyId: string;
  kp: KeyPair;
  /** Every key pair the user had, by key id (to open old messages). */
  ring: Map<string, KeyPair>;
  /** null: an account from before version 2 (no identity key, no certificates). */
  identity: IdentityKeyPair | null;
  seq: number;
  /** The current key's certificate; null before version 2. */
  certificate: Uint8Array | null;
}

interface Stored {
  input: Record<string, unknown>;
  hash: string;
  sender: string;
}

type Vars = Record<string, unknown>;
type Faults = { sendMessage?: ('lose-answer' | 'network' | 'forbidden')[] };

const gqlError = (message: string, extensions: Record<string, unknown>) => ({ errors: [{ message, extensions }] });

export class FakeServer {
  users = new Map<string, FakeUser>();
  rooms = new Map<string, string[]>();
  messages = new Map<string, Stored>();
  calls: { op: string; vars: Vars }[] = [];
  faults: Faults = {};
  /** Runs once, just before the next sendMessage is handled (a member rotating a key in between, say). */
  beforeNextSend: (() => void) | null = null;

  /** A user with an identity key and a certified first key (v1: neither, an account from before version 2). */
  addUser(username: string, opts: { v1?: boolean } = {}): FakeUser {
    const kp = generateKeyPair();
    const identity = opts.v1 ? null : generateIdentity();
    const u: FakeUser = { id: randomUUID(), username, keyId: randomUUID(), kp, ring: new Map(), identity, seq: 1, certificate: identity ? certifyKemKey(identity, kp.algorithm, 1, kp.publicKey) : null };
    u.ring.set(u.keyId, kp);
    this.users.set(u.id, u);
    return u;
  }

  /** A new key certified with the next seq (or, given, another seq). */
  rotate(u: FakeUser, seq = u.seq + 1): void {
    u.kp = generateKeyPair('X_WING');
    u.keyId = randomUUID();
    u.ring.set(u.keyId, u.kp);
    u.seq = seq;
    u.certificate = u.identity ? certifyKemKey(u.identity, u.kp.algorithm, seq, u.kp.publicKey) : null;
  }

  /** A new identity key with a new key it certifies (setIdentityKey; or a server lying about the user). */
  resetIdentity(u: FakeUser): void {
    u.identity = generateIdentity();
    this.rotate(u);
  }

  /** The account of a user on a fresh device of its own (its identity key; pins start empty). */
  async account(u: FakeUser): Promise<Account> {
    return { userId: u.id, store: await KeyStore.open(`fake-${u.id}-${randomUUID()}`), identity: u.identity };
  }

  room(...members: FakeUser[]): string {
    const id = randomUUID();
    this.rooms.set(id, members.map((m) => m.id));
    return id;
  }

  private userJSON(u: FakeUser) {
    return {
      __typename: 'User', id: u.id, username: u.username, online: true, createdAt: '2026-11-30T00:00:00Z',
      publicKey: {
        __typename: 'PublicKey', id: u.keyId, algorithm: u.kp.algorithm, key: b64(u.kp.publicKey), fingerprint: 'f', createdAt: '2026-11-30T00:00:00Z', current: true,
        signature: u.certificate ? b64(u.certificate) : null, seq: u.certificate ? u.seq : null,
      },
      identityKey: u.identity ? { __typename: 'IdentityKey', key: b64(u.identity.publicKey), fingerprint: 'f' } : null,
    };
  }

  /** A stored message as reader self sees it. */
  private messageJSON(self: string, senderId: string, input: Record<string, unknown>) {
    const s = this.users.get(senderId)!;
    const roomId = input['roomId'] as string | undefined;
    const recipientId = input['recipientId'] as string | undefined;
    const r = recipientId ? this.users.get(recipientId) : undefined;
    const myKey = (input['keys'] as { userId: string }[]).find((k) => k.userId === self);
    return {
      __typename: 'Message', id: input['id'], ciphertext: input['ciphertext'], nonce: input['nonce'], createdAt: '2026-11-30T00:00:00Z', deleted: false,
      sender: { __typename: 'User', id: s.id, username: s.username },
      room: roomId ? { __typename: 'Room', id: roomId } : null,
      recipient: r ? { __typename: 'User', id: r.id, username: r.username } : null,
      myKey: myKey ? { __typename: 'RecipientKey', readAt: null, ...myKey } : null,
      attachment: null,
      version: input['signature'] ? 2 : 1,
      signature: input['signature'] ?? null,
      keyDigests: input['signature'] ? sortedLeaves(storedKeys(input).map(fromWireKey)).map(b64) : null,
      attachmentId: input['attachmentId'] ?? null,
    };
  }

  handle(self: string, op: string, vars: Vars): unknown {
    this.calls.push({ op, vars });
    switch (op) {
      case 'Users':
        return { data: { users: (vars['ids'] as string[]).flatMap((id) => (this.users.has(id) ? [this.userJSON(this.users.get(id)!)] : [])) } };
      case 'RoomMembers': {
        const ms = this.rooms.get(vars['id'] as string);
        if (!ms?.includes(self)) return { data: { room: null } };
        const first = vars['first'] as number;
        if (first < 1 || first > 100) return gqlError('first: 1 to 100', { code: 'BAD_USER_INPUT' });
        const start = vars['after'] ? Number(vars['after']) : 0;
        const page = ms.slice(start, start + first);
        const end = start + page.length;
        return {
          data: {
            room: {
              __typename: 'Room', id: vars['id'],
              membersConnection: {
                __typename: 'RoomMemberConnection',
                edges: page.map((id) => ({ __typename: 'RoomMemberEdge', node: { __typename: 'RoomMember', role: 'MEMBER', joinedAt: '2026-11-30T00:00:00Z', user: this.userJSON(this.users.get(id)!) } })),
                pageInfo: { __typename: 'PageInfo', hasNextPage: end < ms.length, endCursor: page.length ? String(end) : null },
              },
            },
          },
        };
      }
      case 'MessageById': {
        const m = this.messages.get(vars['id'] as string);
        return { data: { message: m ? this.messageJSON(self, m.sender, m.input) : null } };
      }
      case 'SendMessage':
        return this.send(self, vars['input'] as Record<string, unknown>);
      default:
        return gqlError(`fake server: no ${op}`, { code: 'INTERNAL_SERVER_ERROR' });
    }
  }

  private send(self: string, input: Record<string, unknown>): unknown {
    const before = this.beforeNextSend;
    this.beforeNextSend = null;
    before?.();
    const fault = this.faults.sendMessage?.shift();
    if (fault === 'network') return 'network';
    if (fault === 'forbidden') return gqlError('forbidden', { code: 'FORBIDDEN' });
    const roomId = input['roomId'] as string | undefined;
    const want = roomId ? this.rooms.get(roomId) ?? [] : [self, input['recipientId'] as string];
    const keys = input['keys'] as { userId: string; keyId: string }[];
    // The recipient check runs before the id lookup, as in resolvers/messages.go.
    const missing = want.filter((id) => !keys.some((k) => k.userId === id)).sort();
    const unexpected = keys.filter((k) => !want.includes(k.userId)).map((k) => k.userId).sort();
    const stale = keys.filter((k) => want.includes(k.userId) && this.users.get(k.userId)!.keyId !== k.keyId).map((k) => k.keyId).sort();
    if (missing.length + unexpected.length + stale.length > 0) {
      return gqlError('keys: stale key ids; fetch the recipients\' current keys and seal again', { code: 'BAD_USER_INPUT', missingUserIds: missing, unexpectedUserIds: unexpected, staleKeyIds: stale });
    }
    // As the server does: a signature must verify against the sender's current identity key.
    const sig = input['signature'] as string | undefined;
    const sender = this.users.get(self)!;
    if (sig !== undefined) {
      const cid = roomId ?? (input['recipientId'] as string);
      const meta = { kind: 'msg' as const, objectId: input['id'] as string, senderId: self, conversationId: cid, attachmentId: (input['attachmentId'] as string | undefined) ?? '', name: '', mimeType: '' };
      const leaves = sortedLeaves(storedKeys(input).map(fromWireKey));
      if (!sender.identity || !verifyEnvelope(sender.identity.publicKey, meta, unb64(input['ciphertext'] as string), unb64(input['nonce'] as string), leaves, unb64(sig))) {
        return gqlError('signature: does not verify', { code: 'BAD_USER_INPUT', field: 'signature' });
      }
    }
    const hash = hex(sha256(utf8(JSON.stringify(input))));
    const id = input['id'] as string;
    const old = this.messages.get(id);
    if (old && old.hash !== hash) return gqlError(`message id ${id} is taken by other content`, { code: 'CONFLICT' });
    if (!old) this.messages.set(id, { input, hash, sender: self });
    const answer = { data: { sendMessage: this.messageJSON(self, self, input) } };
    return fault === 'lose-answer' ? 'network' : answer;
  }

  /** An Apollo Client that talks to this server as user self. */
  client(self: FakeUser): ApolloClient {
    const link = new ApolloLink((op) => new Observable<ApolloLink.Result>((sub) => {
      const r = this.handle(self.id, op.operationName ?? '', op.variables);
      if (r === 'network') sub.error(new TypeError('fetch failed'));
      else {
        sub.next(r as ApolloLink.Result);
        sub.complete();
      }
    }));
    return new ApolloClient({ link, cache: new InMemoryCache() });
  }
}

/** Decodes a stored message's keys (to open it as a member). */
export function storedKeys(input: Record<string, unknown>): { userId: string; keyId: string; kemCiphertext: string; wrappedKey: string }[] {
  return input['keys'] as { userId: string; keyId: string; kemCiphertext: string; wrappedKey: string }[];
}

export { unb64 };
