// Creating a room, joining one by its invite code, starting a direct conversation.

import { useApolloClient } from '@apollo/client/react';
import { ConversationsDocument, CreateRoomDocument, JoinRoomDocument, type RoomPreviewQuery, RoomPreviewDocument, UserByUsernameDocument } from '@qchat/client';
import { type FormEvent, useState } from 'react';
import { useRouter } from '../router';
import { useAction } from '../useAction';

export function CreateRoom() {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [name, setName] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const { data } = await client.mutate({ mutation: CreateRoomDocument, variables: { input: { name: name.trim(), isGroup: true } }, refetchQueries: [ConversationsDocument] });
      if (!data) throw new Error('no answer');
      navigate(`/room/${encodeURIComponent(data.createRoom.id)}`);
    });
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="create-title">
      <h2 id="create-title">New room</h2>
      <label>
        Room name
        <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>{busy ? 'Creating…' : 'Create room'}</button>
    </form>
  );
}

export function JoinRoom({ initialCode }: { initialCode: string }) {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [code, setCode] = useState(initialCode);
  const [preview, setPreview] = useState<RoomPreviewQuery['roomPreview'] | undefined>(undefined);
  const { busy, error, run } = useAction();

  const look = (e: FormEvent) => {
    e.preventDefault();
    setPreview(undefined);
    void run(async () => {
      const { data } = await client.query({ query: RoomPreviewDocument, variables: { code: code.trim() }, fetchPolicy: 'network-only' });
      setPreview(data?.roomPreview ?? null);
    });
  };
  const join = () =>
    run(async () => {
      const { data } = await client.mutate({ mutation: JoinRoomDocument, variables: { code: code.trim() }, refetchQueries: [ConversationsDocument] });
      if (!data) throw new Error('no answer');
      navigate(`/room/${encodeURIComponent(data.joinRoom.id)}`);
    });
  return (
    <section className="card" aria-labelledby="join-title">
      <h2 id="join-title">Join a room</h2>
      <form onSubmit={look}>
        <label>
          Invite code
          <input required autoComplete="off" spellCheck={false} value={code} onChange={(e) => { setCode(e.target.value); setPreview(undefined); }} />
        </label>
        <button type="submit" disabled={busy}>Find room</button>
      </form>
      {preview === null && <p className="error" role="alert">No room has that invite code. Check it with whoever sent it.</p>}
      {preview && (
        <div className="preview" role="status">
          <p>
            <strong>{preview.name}</strong>, {preview.memberCount} member{preview.memberCount === 1 ? '' : 's'}
          </p>
          <button type="button" onClick={() => void join()} disabled={busy}>Join {preview.name}</button>
        </div>
      )}
      {error && <p className="error" role="alert">{error}</p>}
    </section>
  );
}

export function NewDirect() {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [username, setUsername] = useState('');
  const { busy, error, setError, run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const name = username.trim().replace(/^@/, '');
      const { data } = await client.query({ query: UserByUsernameDocument, variables: { username: name }, fetchPolicy: 'network-only' });
      const user = data?.userByUsername;
      if (!user) {
        setError(`There is no user named ${name}.`);
        return;
      }
      navigate(`/dm/${encodeURIComponent(user.username)}`);
    });
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="direct-title">
      <h2 id="direct-title">Message someone</h2>
      <label>
        Their username
        <input required autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>Start conversation</button>
    </form>
  );
}
