// Sending and opening messages through the API. A message's id is made by the
// client and sealed into its envelope, so sending the same sealed input again
// is a safe retry (the server answers with the stored message); an envelope
// the server refuses because a member joined, left or rotated a key is
// resealed for the recipients fetched again, under the same id.

import type { ApolloClient } from '@apollo/client';
import { type Random, b64, defaultRandom, timeOrderedUUID, unb64 } from '../crypto/bytes.js';
import {
  CannotOpenError, type Header, type MetaV2, type Recipient, type RecipientKey, type WireRecipientKey, fromWireKey, openV1, openV2, sealV2, textOf, toWire,
} from '../crypto/envelope.js';
import type { IdentityKeyPair } from '../crypto/identity.js';
import type { KeyPair } from '../crypto/kem.js';
import { apiErrors, hasErrorCode, recipientMismatch } from './errors.js';
import { PAGE_SIZE } from './pages.js';
import { type Account, type CertifiedRecipient, checkRecipients, recipientFromApi, senderIdentityKeys } from './trust.js';
import {
  MessageByIdDocument, type MessageFieldsFragment, RoomMembersDocument, type RoomMembersQuery, type RoomMembersQueryVariables, SendMessageDocument, type SendMessageInput,
  UsersDocument,
} from './generated/graphql.js';

/** A room, or the direct conversation with another user. */
export type ConversationRef = { readonly roomId: string } | { readonly userId: string };

/** Page size of RoomMembers (the recipients with their certificates). */
export const MEMBERS_PAGE_SIZE = PAGE_SIZE.recipients;

/**
 * The envelope conversation id (PROTOCOL.md §3): the room id, or for a direct
 * message the user it is addressed to.
 */
export function conversationId(c: ConversationRef): string {
  return 'roomId' in c ? c.roomId : c.userId;
}

/**
 * The current keys of everyone an envelope for c must be sealed for, with
 * their certificates and identity keys (checkRecipients checks them): every
 * member of a room (a page of Room.membersConnection at a time: Room.members
 * is priced at the room cap), or both users of a direct conversation. Always
 * from the network: a cached key may be the stale one.
 */
export async function fetchRecipients(client: ApolloClient, selfId: string, c: ConversationRef): Promise<CertifiedRecipient[]> {
  if (!('roomId' in c)) {
    if (c.userId === selfId) throw new Error('a direct message to yourself is not allowed');
    const { data } = await client.query({ query: UsersDocument, variables: { ids: [selfId, c.userId] }, fetchPolicy: 'network-only' });
    const users = data?.users ?? [];
    if (users.length !== 2) throw new Error(`user ${c.userId} not found`);
    return users.map(recipientFromApi);
  }
  const out: CertifiedRecipient[] = [];
  let after: string | null = null;
  for (;;) {
    const variables: RoomMembersQueryVariables = { id: c.roomId, first: MEMBERS_PAGE_SIZE, after };
    const { data } = await client.query({ query: RoomMembersDocument, variables, fetchPolicy: 'network-only' });
    const conn: NonNullable<RoomMembersQuery['room']>['membersConnection'] | undefined = data?.room?.membersConnection;
    if (!conn) throw new Error(`room ${c.roomId} not found`);
    for (const e of conn.edges) out.push(recipientFromApi(e.node.user));
    if (!conn.pageInfo.hasNextPage || !conn.pageInfo.endCursor) return out;
    after = conn.pageInfo.endCursor;
  }
}

/**
 * A message sealed and ready to send. Keep it until the send succeeds: sending
 * the same one again is a safe retry. It holds the plaintext so that it can be
 * sealed again for new recipients; keep it in memory only.
 */
export interface PreparedMessage {
  readonly id: string;
  readonly conversation: ConversationRef;
  readonly plaintext: Uint8Array;
  readonly attachmentId: string | null;
  readonly input: SendMessageInput;
}

export interface PrepareOptions {
  /** The id to use (a lower-case UUID); a fresh one by default. */
  readonly id?: string;
  readonly attachmentId?: string | null;
  readonly random?: Random;
}

/** The account's identity key pair, which every envelope is signed with. */
export function signingKey(account: Account): IdentityKeyPair {
  if (!account.identity) throw new Error('this browser does not hold your identity key: restore your keys from your key backup first');
  return account.identity;
}

// Version 2: sealed with the v2 labels and signed over the whole envelope,
// the attachment's id included (PROTOCOL-V2 §3).
async function seal(account: Account, conversation: ConversationRef, id: string, plaintext: Uint8Array, attachmentId: string | null, recipients: readonly Recipient[], random: Random): Promise<PreparedMessage> {
  const meta: MetaV2 = { kind: 'msg', objectId: id, senderId: account.userId, conversationId: conversationId(conversation), attachmentId: attachmentId ?? '', name: '', mimeType: '' };
  const signed = await sealV2(meta, plaintext, recipients, signingKey(account), { random });
  const w = toWire(signed.envelope);
  const input: SendMessageInput = {
    id,
    ...('roomId' in conversation ? { roomId: conversation.roomId } : { recipientId: conversation.userId }),
    ciphertext: w.ciphertext,
    nonce: w.nonce,
    keys: w.keys,
    signature: b64(signed.signature),
    ...(attachmentId ? { attachmentId } : {}),
  };
  return { id, conversation, plaintext, attachmentId, input };
}

/**
 * The recipients of c, fetched and checked (checkRecipients): their keys'
 * certificates against the pinned identity keys, seqs never going back.
 * Throws IdentityChangedError or UntrustedKeyError, naming the user.
 */
export async function trustedRecipients(client: ApolloClient, account: Account, c: ConversationRef): Promise<CertifiedRecipient[]> {
  const rs = await fetchRecipients(client, account.userId, c);
  await checkRecipients(account, rs);
  return rs;
}

/**
 * Fetches the recipients' keys, checks them (trustedRecipients) and seals
 * plaintext (text as UTF-8) under a client-made id.
 */
export async function prepareMessage(client: ApolloClient, account: Account, conversation: ConversationRef, plaintext: Uint8Array | string, opts: PrepareOptions = {}): Promise<PreparedMessage> {
  const random = opts.random ?? defaultRandom;
  const pt = typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : Uint8Array.from(plaintext);
  const recipients = await trustedRecipients(client, account, conversation);
  return seal(account, conversation, opts.id ?? timeOrderedUUID(random), pt, opts.attachmentId ?? null, recipients, random);
}

/** A send that did not succeed; prepared is the latest sealed form, to retry with. */
export class SendFailedError extends Error {
  readonly prepared: PreparedMessage;
  override readonly cause: unknown;
  constructor(prepared: PreparedMessage, cause: unknown) {
    super(`send message ${prepared.id}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'SendFailedError';
    this.prepared = prepared;
    this.cause = cause;
  }
}

export interface SendOptions {
  /** How many times to fetch keys and seal again after a recipient mismatch (default 2). */
  readonly reseals?: number;
  /** How many times to resend the same input after a failure without an API error, i.e. a lost request or answer (default 2). */
  readonly networkRetries?: number;
  /** The pause before the nth network retry, in ms (default 500 × 2^(n-1)). */
  readonly retryDelay?: (attempt: number) => number;
  /** Told each time the message is sealed again, so that a caller keeping it for retries holds the latest. */
  readonly onResealed?: (p: PreparedMessage) => void;
  readonly random?: Random;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends a prepared message. A lost answer is retried with the same input (the
 * server answers a retry with the stored message); a recipient mismatch
 * (BAD_USER_INPUT with staleKeyIds, missingUserIds or unexpectedUserIds) makes
 * it fetch the keys again and seal again under the same id. If a resealed send
 * meets CONFLICT, an earlier attempt was stored after all: the stored message
 * is fetched and returned. Anything else throws SendFailedError holding the
 * latest prepared message, which the caller may send again later.
 */
export async function sendPrepared(client: ApolloClient, account: Account, prepared: PreparedMessage, opts: SendOptions = {}): Promise<MessageFieldsFragment> {
  const selfId = account.userId;
  const reseals = opts.reseals ?? 2;
  const networkRetries = opts.networkRetries ?? 2;
  const delay = opts.retryDelay ?? ((n: number) => 500 * 2 ** (n - 1));
  let p = prepared;
  let resealed = 0;
  let retried = 0;
  for (;;) {
    try {
      const { data } = await client.mutate({ mutation: SendMessageDocument, variables: { input: p.input } });
      if (!data) throw new Error('sendMessage: no data');
      return data.sendMessage;
    } catch (err) {
      try {
        if (recipientMismatch(err) && resealed < reseals) {
          resealed++;
          const recipients = await trustedRecipients(client, account, p.conversation);
          p = await seal(account, p.conversation, p.id, p.plaintext, p.attachmentId, recipients, opts.random ?? defaultRandom);
          opts.onResealed?.(p);
          continue;
        }
        if (resealed > 0 && hasErrorCode(err, 'CONFLICT')) {
          const stored = await storedMessage(client, selfId, p.id);
          if (stored) return stored;
        }
        if (apiErrors(err).length === 0 && retried < networkRetries) {
          retried++;
          await sleep(delay(retried));
          continue;
        }
      } catch (inner) {
        throw new SendFailedError(p, inner);
      }
      throw new SendFailedError(p, err);
    }
  }
}

async function storedMessage(client: ApolloClient, selfId: string, id: string): Promise<MessageFieldsFragment | null> {
  const { data } = await client.query({ query: MessageByIdDocument, variables: { id }, fetchPolicy: 'network-only' });
  const m = data?.message;
  return m && m.sender.id === selfId ? m : null;
}

/** prepareMessage then sendPrepared. */
export async function sendMessage(
  client: ApolloClient,
  account: Account,
  conversation: ConversationRef,
  plaintext: Uint8Array | string,
  opts: PrepareOptions & SendOptions = {},
): Promise<MessageFieldsFragment> {
  return sendPrepared(client, account, await prepareMessage(client, account, conversation, plaintext, opts), opts);
}

/** The header a message was sealed under, from the API's fields. */
export function messageHeader(m: Pick<MessageFieldsFragment, 'id' | 'sender' | 'room' | 'recipient'>): Header {
  const cid = m.room?.id ?? m.recipient?.id;
  if (!cid) throw new Error(`message ${m.id}: neither room nor recipient`);
  return { kind: 'msg', objectId: m.id, senderId: m.sender.id, conversationId: cid };
}

/** What a reader received of a signed object (a message or a document), as the API returns it. */
export interface Received {
  readonly meta: MetaV2;
  readonly version: number;
  readonly ciphertext: Uint8Array;
  readonly nonce: string;
  readonly myKey: WireRecipientKey | null | undefined;
  readonly keyDigests: readonly string[] | null | undefined;
  readonly signature: string | null | undefined;
}

/** A plaintext, and whether its sender's signature verified (false: version 1, "sender not verified"). */
export interface Opened {
  readonly plaintext: Uint8Array;
  readonly verified: boolean;
}

/**
 * Opens a message's or document's envelope: version 2 against the sender's
 * pinned identity keys (PROTOCOL-V2 §3.5; any one that verifies), version 1
 * as it is, marked unverified. Every failure, a signature that does not
 * verify included, is CannotOpenError.
 */
export async function openReceived(r: Received, keyPair: (keyId: string) => KeyPair | null | undefined, senderKeys: readonly Uint8Array[]): Promise<Opened> {
  const kp = r.myKey ? keyPair(r.myKey.keyId) : null;
  if (!kp || !r.myKey) throw new CannotOpenError();
  let nonce: Uint8Array, myKey: RecipientKey, keyDigests: Uint8Array[] | null, signature: Uint8Array | null;
  try {
    nonce = unb64(r.nonce);
    myKey = fromWireKey(r.myKey);
    keyDigests = r.keyDigests ? r.keyDigests.map(unb64) : null;
    signature = r.signature ? unb64(r.signature) : null;
  } catch {
    throw new CannotOpenError();
  }
  if (r.version === 1) return { plaintext: await openV1(r.meta, r.ciphertext, nonce, myKey, kp), verified: false };
  if (r.version !== 2 || !keyDigests || !signature) throw new CannotOpenError();
  const received = { ciphertext: r.ciphertext, nonce, myKey, keyDigests, signature };
  for (const ik of senderKeys) {
    try {
      return { plaintext: await openV2(r.meta, received, ik, kp), verified: true };
    } catch {
      // Another pinned key (from before an accepted change) may have signed it.
    }
  }
  throw new CannotOpenError();
}

/** What opening a message needs of it (MessageFields and MessagePreviewFields both have it). */
export type OpenableMessage = Pick<MessageFieldsFragment, 'id' | 'sender' | 'room' | 'recipient' | 'ciphertext' | 'nonce' | 'myKey' | 'version' | 'signature' | 'keyDigests' | 'attachmentId'>;

/** A message's text, and whether its sender's signature verified. */
export interface OpenedMessage {
  readonly text: string;
  readonly verified: boolean;
}

/**
 * Opens a message as the API returns it, with the key pair its myKey names
 * (keyPair looks it up by key id; null when this device lacks it) and the
 * sender's pinned identity keys (senderIdentityKeys; version 2 only). Every
 * failure is CannotOpenError; a tombstone is not opened (check deleted first).
 */
export async function openMessage(m: OpenableMessage, keyPair: (keyId: string) => KeyPair | null | undefined, senderKeys: readonly Uint8Array[] = []): Promise<OpenedMessage> {
  let ciphertext: Uint8Array;
  try {
    ciphertext = unb64(m.ciphertext);
  } catch {
    throw new CannotOpenError();
  }
  const meta: MetaV2 = { ...messageHeader(m), attachmentId: m.attachmentId ?? '', name: '', mimeType: '' };
  const o = await openReceived({ meta, version: m.version, ciphertext, nonce: m.nonce, myKey: m.myKey, keyDigests: m.keyDigests, signature: m.signature }, keyPair, senderKeys);
  return { text: textOf(o.plaintext), verified: o.verified };
}

/** openMessage with the sender's identity keys as this device pinned them (pinned now, on first use). */
export async function readMessage(client: ApolloClient, account: Account, m: OpenableMessage, keyPair: (keyId: string) => KeyPair | null | undefined): Promise<OpenedMessage> {
  const senderKeys = m.version === 2 ? await senderIdentityKeys(client, account, m.sender.id) : [];
  return openMessage(m, keyPair, senderKeys);
}
