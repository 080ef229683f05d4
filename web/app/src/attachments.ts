// Attachments: a file is sealed as a document (PROTOCOL.md §8: kind `doc`,
// its own client-made id), uploaded as a GraphQL multipart request whose file
// part is the raw ciphertext (XMLHttpRequest, for the upload's progress), and
// shared by a message with attachmentId. Opening one downloads the
// ciphertext with the bearer token and opens it in the browser.

import { type ApolloClient, CombinedGraphQLErrors } from '@apollo/client';
import { print } from 'graphql';
import { type Account, type ConversationRef, DocumentByIdDocument, type KeyPair, UploadDocumentDocument, authHeaders, readDocument, sealDocument } from '@qchat/client';

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
}

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

/**
 * Downloads a document and opens it: its plaintext bytes, and whether the
 * uploader's signature verified (false for a version 1 document).
 */
export async function downloadFile(
  client: ApolloClient,
  token: string,
  account: Account,
  documentId: string,
  keyPair: (keyId: string) => KeyPair | null | undefined,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; verified: boolean }> {
  const { data } = await client.query({ query: DocumentByIdDocument, variables: { id: documentId }, fetchPolicy: 'network-only' });
  const d = data?.document;
  if (!d) throw new AttachmentError('This file no longer exists.');
  const kp = d.myKey ? keyPair(d.myKey.keyId) : null;
  if (!kp || !d.myKey) throw new AttachmentError('This file cannot be opened on this browser: it was sealed to a key this browser does not have.');
  const resp = await fetch(d.downloadUrl, { headers: authHeaders(token) });
  if (!resp.ok) throw new AttachmentError(resp.status === 404 ? 'This file no longer exists.' : `The server answered HTTP ${resp.status}.`);
  const ct = new Uint8Array(await resp.arrayBuffer());
  const o = await readDocument(client, account, d, ct, keyPair);
  return { bytes: o.plaintext.slice(), verified: o.verified };
}
