// A room's documents (Room.documentsConnection, newest first, a page at a
// time): name, size, who shared it and when; each downloads decrypted, its
// signature checked against the uploader's pinned identity key; the uploader
// may delete its own (after a confirmation), and the messages that shared it
// then say so.

import { useApolloClient, useQuery } from '@apollo/client/react';
import { DeleteDocumentDocument, PAGE_SIZE, RoomDocumentsDocument, type RoomDocumentsQuery } from '@qchat/client';
import { useRef, useState } from 'react';
import { forgetDocument } from '../api';
import { type OpenedFile, AttachmentError, describeFileError, describeVerified, downloadFile, formatSize, saveFile } from '../attachments';
import { describeError } from '../errors';
import type { Session } from '../session';
import { formatWhen } from './Conversations';

type RoomDocument = NonNullable<RoomDocumentsQuery['room']>['documentsConnection']['edges'][number]['node'];

export function Documents({ roomId, session }: { roomId: string; session: Session }) {
  const [open, setOpen] = useState(false);
  return (
    <div className="documents-toggle">
      <button type="button" className="secondary" aria-expanded={open} aria-controls="room-documents" onClick={() => setOpen(!open)}>
        Documents
      </button>
      {open && <DocumentList roomId={roomId} session={session} />}
    </div>
  );
}

function DocumentList({ roomId, session }: { roomId: string; session: Session }) {
  const { data, error, loading, fetchMore } = useQuery(RoomDocumentsDocument, {
    variables: { id: roomId, first: PAGE_SIZE.documents },
    fetchPolicy: 'cache-and-network',
  });
  const [more, setMore] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  // What the person did last (a deletion), announced; focus goes there so that it is not lost with the removed row.
  const [status, setStatus] = useState<string | null>(null);
  const statusRef = useRef<HTMLParagraphElement>(null);
  const conn = data?.room?.documentsConnection;
  const docs = conn?.edges.map((e) => e.node) ?? [];
  const loadMore = async () => {
    const after = conn?.pageInfo.endCursor;
    if (!after) return;
    setMore({ busy: true, error: null });
    try {
      await fetchMore({ variables: { after } });
      setMore({ busy: false, error: null });
    } catch (err) {
      setMore({ busy: false, error: describeError(err) });
    }
  };
  const deleted = (name: string) => {
    setStatus(`${name} deleted.`);
    requestAnimationFrame(() => statusRef.current?.focus());
  };
  return (
    <section id="room-documents" className="documents" aria-labelledby="room-documents-title">
      <h3 id="room-documents-title">Documents shared in this room</h3>
      <p role="status" className="hint" ref={statusRef} tabIndex={-1}>{status}</p>
      {error && docs.length === 0 && <p className="error" role="alert">{describeError(error)}</p>}
      {loading && docs.length === 0 && <p className="hint">Loading documents…</p>}
      {!loading && !error && docs.length === 0 && <p className="hint">No documents yet. Attach a file to a message to share one.</p>}
      {docs.length > 0 && (
        <ul aria-label="Documents">
          {docs.map((d) => (
            <DocumentItem key={d.id} d={d} session={session} onDeleted={deleted} />
          ))}
        </ul>
      )}
      {conn?.pageInfo.hasNextPage && (
        <p>
          <button type="button" className="secondary" onClick={() => void loadMore()} disabled={more.busy}>
            {more.busy ? 'Loading more documents…' : 'Load more documents'}
          </button>
        </p>
      )}
      {more.error && <p className="error" role="alert">{more.error}</p>}
    </section>
  );
}

function DocumentItem({ d, session, onDeleted }: { d: RoomDocument; session: Session; onDeleted: (name: string) => void }) {
  const client = useApolloClient();
  const [busy, setBusy] = useState(false);
  const [opened, setOpened] = useState<OpenedFile | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mine = d.uploader.id === session.userId;
  const deleteRef = useRef<HTMLButtonElement>(null);
  const keep = () => {
    setConfirming(false);
    requestAnimationFrame(() => deleteRef.current?.focus());
  };
  const download = async () => {
    setBusy(true);
    setError(null);
    try {
      const f = await downloadFile(client, session.token, session, d.id, (id) => session.keyRing.get(id));
      setOpened(f);
      saveFile(f.bytes, d.name, d.mimeType);
    } catch (err) {
      if (err instanceof AttachmentError && err.gone) forgetDocument(client.cache, d.id);
      setError(describeFileError(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await client.mutate({ mutation: DeleteDocumentDocument, variables: { id: d.id } });
      onDeleted(d.name);
      forgetDocument(client.cache, d.id);
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };
  return (
    <li className="document">
      <span className="name">{d.name}</span>
      <span className="hint">
        {formatSize(d.size)}, shared by {mine ? 'you' : d.uploader.username}, <time dateTime={d.createdAt}>{formatWhen(d.createdAt)}</time>
      </span>
      <span className="document-actions">
        <button type="button" className="link" onClick={() => void download()} disabled={busy}>Download {d.name}</button>
        {mine &&
          (confirming ? (
            <span className="confirm" role="group" aria-label={`Delete ${d.name}?`}>
              <span>Delete {d.name} for everyone? Messages that shared it will say it was deleted.</span>
              <button type="button" className="link" onClick={() => void remove()} disabled={busy}>Yes, delete {d.name}</button>
              {/* The safe choice has the focus. */}
              <button type="button" className="link" onClick={keep} disabled={busy} autoFocus>Keep {d.name}</button>
            </span>
          ) : (
            <button type="button" className="link" ref={deleteRef} onClick={() => setConfirming(true)}>Delete {d.name}</button>
          ))}
      </span>
      {opened && <span className={opened.verified ? 'verified' : 'unverified'}>{describeVerified(opened)}</span>}
      {error && <span className="error" role="alert">{error}</span>}
    </li>
  );
}
