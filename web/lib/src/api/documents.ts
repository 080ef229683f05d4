// Documents (attachments) in version 2 (PROTOCOL-V2 §3): sealed as kind doc
// under a client-made id, signed over the name and MIME type exactly as
// uploaded, and opened against the uploader's pinned identity key. Uploading
// itself (a multipart request, with progress) is the app's: the library gives
// the sealed input and the ciphertext for the file part.

import type { ApolloClient } from '@apollo/client';
import { b64, timeOrderedUUID } from '../crypto/bytes.js';
import { type MetaV2, sealV2, toWire } from '../crypto/envelope.js';
import type { KeyPair } from '../crypto/kem.js';
import { type ConversationRef, type Opened, conversationId, openReceived, signingKey, trustedRecipients } from './messages.js';
import { type Account, senderIdentityKeys } from './trust.js';
import type { DocumentFieldsFragment, UploadDocumentInput } from './generated/graphql.js';

/** A sealed document: the upload's input (its file part left null) and the ciphertext to send as the file. */
export interface SealedDocument {
  readonly id: string;
  readonly input: Omit<UploadDocumentInput, 'file'> & { readonly file: null };
  readonly ciphertext: Uint8Array<ArrayBuffer>;
}

export interface DocumentToSeal {
  readonly name: string;
  readonly mimeType: string;
  readonly bytes: Uint8Array;
  /** The id to use (a lower-case UUID); a fresh one by default. */
  readonly id?: string;
}

/**
 * Fetches and checks the recipients (trustedRecipients: certificates, pins,
 * identity changes) and seals and signs a document for them.
 */
export async function sealDocument(client: ApolloClient, account: Account, conversation: ConversationRef, doc: DocumentToSeal): Promise<SealedDocument> {
  const identity = signingKey(account);
  const recipients = await trustedRecipients(client, account, conversation);
  const id = doc.id ?? timeOrderedUUID();
  const meta: MetaV2 = { kind: 'doc', objectId: id, senderId: account.userId, conversationId: conversationId(conversation), attachmentId: '', name: doc.name, mimeType: doc.mimeType };
  const signed = await sealV2(meta, doc.bytes, recipients, identity);
  const w = toWire(signed.envelope);
  return {
    id,
    input: {
      id,
      ...('roomId' in conversation ? { roomId: conversation.roomId } : { recipientId: conversation.userId }),
      name: doc.name,
      mimeType: doc.mimeType,
      nonce: w.nonce,
      keys: w.keys,
      signature: b64(signed.signature),
      file: null,
    },
    ciphertext: Uint8Array.from(signed.envelope.ciphertext),
  };
}

/** What opening a document needs of it. */
export type OpenableDocument = Pick<DocumentFieldsFragment, 'id' | 'name' | 'mimeType' | 'uploader' | 'room' | 'recipient' | 'nonce' | 'myKey' | 'version' | 'signature' | 'keyDigests'>;

/**
 * Opens a downloaded document's ciphertext with the key pair its myKey names
 * and the uploader's pinned identity keys (version 2). Every failure is CannotOpenError.
 */
export async function openDocument(d: OpenableDocument, ciphertext: Uint8Array, keyPair: (keyId: string) => KeyPair | null | undefined, senderKeys: readonly Uint8Array[]): Promise<Opened> {
  const cid = d.room?.id ?? d.recipient?.id ?? '';
  const meta: MetaV2 = { kind: 'doc', objectId: d.id, senderId: d.uploader.id, conversationId: cid, attachmentId: '', name: d.name, mimeType: d.mimeType };
  return openReceived({ meta, version: d.version, ciphertext, nonce: d.nonce, myKey: d.myKey, keyDigests: d.keyDigests, signature: d.signature }, keyPair, senderKeys);
}

/** openDocument with the uploader's identity keys as this device pinned them. */
export async function readDocument(client: ApolloClient, account: Account, d: OpenableDocument, ciphertext: Uint8Array, keyPair: (keyId: string) => KeyPair | null | undefined): Promise<Opened> {
  const senderKeys = d.version === 2 ? await senderIdentityKeys(client, account, d.uploader.id) : [];
  return openDocument(d, ciphertext, keyPair, senderKeys);
}
