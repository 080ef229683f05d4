// Attachments: a file is sealed as a document (PROTOCOL.md §8: kind `doc`,
// its own client-made id), uploaded as a GraphQL multipart request whose file
// part is the raw ciphertext (XMLHttpRequest, for the upload's progress), and
// shared by a message with attachmentId. Opening one downloads the
// ciphertext with the bearer token and opens it in the browser.

import { type ApolloClient, CombinedGraphQLErrors } from '@apollo/client';
import { print } from 'graphql';
import { type Account, CannotOpenError, type ConversationRef, DocumentByIdDocument, type KeyPair, UploadDocumentDocument, authHeaders, hasErrorCode, readDocument, sealDocument } from '@qchat/client';
import { describeError } from './errors';

/** What the server accepts (PROTOCOL.md §8); anything else is refused before sealing. */
export const ALLOWED_TYPES = [
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'application/pdf',
  'application/msword',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'text/plain',
];
/** The server's limit on a document's ciphertext (the GCM tag adds 16 bytes). */
export const MAX_FILE_BYTES = 10 * 1024 * 1024 - 16;

/** A failure of this module's own, in words a person understands. */
export class AttachmentError extends Error {
  override readonly name = 'AttachmentError';
  /** The document no longer exists (its uploader deleted it). */
  readonly gone: boolean;
  constructor(message: string, gone = false) {
    super(message);
    this.gone = gone;
  }
}

const GONE = 'This file was deleted by the person who shared it.';

const UPLOAD = print(UploadDocumentDocument);

/** Seals file for the conversation's members (their keys checked) and uploads it; resolves to the document's id. */
export async function uploadFile(
  client: ApolloClient,
  token: string,
  account: Account,
  conversation: ConversationRef,
  file: File,
  onProgress: (fraction: number) => void,
): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const sealed = await sealDocument(client, account, conversation, { name: file.name, mimeType: file.type, bytes });
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: UPLOAD, operationName: 'UploadDocument', variables: { input: sealed.input } }));
  form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.append('0', new Blob([sealed.ciphertext], { type: 'application/octet-stream' }), file.name);
  const body = await new Promise<unknown>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/graphql');
    for (const [k, v] of Object.entries(authHeaders(token))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      try {
        resolve(JSON.parse(xhr.responseText));
      } catch {
        reject(new AttachmentError(xhr.status === 413 ? 'The file is too large for the server.' : `The server answered HTTP ${xhr.status}.`));
      }
    };
    xhr.onerror = () => reject(new Error('upload: network error'));
    xhr.send(form);
  });
  const res = body as { data?: { uploadDocument?: { id: string } | null } | null; errors?: unknown[] };
  if (res.errors?.length) throw new CombinedGraphQLErrors(res as never);
  const doc = res.data?.uploadDocument;
  if (!doc) throw new AttachmentError('The server did not store the file.');
  return doc.id;
}

/** A downloaded and opened document. */
export interface OpenedFile {
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The uploader's signature verified against the identity key this browser pinned for it (false: a version 1 document, unsigned). */
  readonly verified: boolean;
  readonly uploader: string;
}

/**
 * Downloads a document and opens it: its plaintext bytes, and whether the
 * uploader's signature verified (false for a version 1 document). A document
 * that is gone throws AttachmentError with gone set.
 */
export async function downloadFile(
  client: ApolloClient,
  token: string,
  account: Account,
  documentId: string,
  keyPair: (keyId: string) => KeyPair | null | undefined,
): Promise<OpenedFile> {
  // A deleted document is NOT_FOUND (or null): the same answer as one never shared with this user.
  const d = await client.query({ query: DocumentByIdDocument, variables: { id: documentId }, fetchPolicy: 'network-only' }).then(
    ({ data }) => data?.document,
    (err: unknown) => {
      if (hasErrorCode(err, 'NOT_FOUND')) return null;
      throw err;
    },
  );
  if (!d) throw new AttachmentError(GONE, true);
  const kp = d.myKey ? keyPair(d.myKey.keyId) : null;
  if (!kp || !d.myKey) throw new AttachmentError('This file cannot be opened on this browser: it was sealed to a key this browser does not have.');
  const resp = await fetch(d.downloadUrl, { headers: authHeaders(token) });
  if (!resp.ok) throw resp.status === 404 ? new AttachmentError(GONE, true) : new AttachmentError(`The server answered HTTP ${resp.status}.`);
  const ct = new Uint8Array(await resp.arrayBuffer());
  const o = await readDocument(client, account, d, ct, keyPair);
  return { bytes: o.plaintext.slice(), verified: o.verified, uploader: d.uploader.username };
}

/** Hands bytes to the browser as a download named name. */
export function saveFile(bytes: Uint8Array<ArrayBuffer>, name: string, mimeType: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type: mimeType }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** What went wrong with a file, in words a person understands. */
export const describeFileError = (err: unknown): string =>
  err instanceof AttachmentError
    ? err.message
    : err instanceof CannotOpenError
      ? 'Cannot open this file on this browser: it was sealed to a key this browser does not have, or its signature does not verify.'
      : describeError(err);

/** A file's size for people: bytes, KiB or MiB. */
export function formatSize(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** How a file's signature checked out, as shown next to it. */
export function describeVerified(f: OpenedFile): string {
  return f.verified ? `Signed by ${f.uploader}, verified` : `${f.uploader}'s signature missing (older format): not verified`;
}
