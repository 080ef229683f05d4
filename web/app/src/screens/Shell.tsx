// The signed-in screen: header, the conversation list and the open screen.
// Below 700 px only one of list and screen shows, by route.

import { useApolloClient, useQuery } from '@apollo/client/react';
import { MeDocument, RotateKeyDocument, b64, generateKeyPair, hasErrorCode } from '@qchat/client';
import { useEffect, useState } from 'react';
import type { Api, ConnectionState } from '../api';
import { describeError } from '../errors';
import { Live } from '../live';
import { Link, param, useRouter } from '../router';
import type { Session } from '../session';
import { DirectChat, RoomChat } from './Chat';
import { ConversationList } from './Conversations';
import { CreateRoom, JoinRoom, NewDirect } from './Forms';

interface ShellProps {
  session: Session;
  api: Api;
  onSignOut: () => Promise<void>;
  onKeys: (keyRing: Session['keyRing']) => void;
}

export function Shell({ session, api, onSignOut, onKeys }: ShellProps) {
  const { path } = useRouter();
  const me = useQuery(MeDocument);
  useEffect(() => {
    if (me.error && hasErrorCode(me.error, 'UNAUTHENTICATED')) void onSignOut();
  }, [me.error, onSignOut]);

  const roomId = param(path, '/room/');
  const dmName = param(path, '/dm/');
  let screen;
  if (roomId) screen = <RoomChat key={roomId} roomId={roomId} session={session} />;
  else if (dmName) screen = <DirectChat key={dmName} username={dmName} session={session} />;
  else if (path === '/new-room') screen = <CreateRoom />;
  else if (path === '/join' || path.startsWith('/join/')) screen = <JoinRoom initialCode={param(path, '/join/') ?? ''} />;
  else if (path === '/new-direct') screen = <NewDirect />;
  else screen = <Welcome />;
  const home = screen.type === Welcome;

  const current = me.data?.me?.publicKey ?? null;
  const missingKey = current !== null && !session.keyRing.has(current.id);

  return (
    <Live selfId={session.userId}>
      <div className={home ? 'shell at-home' : 'shell'}>
        <header className="topbar">
          <Link to="/" className="brand">QChat</Link>
          <span className="whoami">Signed in as <strong>{session.username}</strong></span>
          <button type="button" onClick={() => void onSignOut()}>Sign out</button>
        </header>
        <ConnectionBanner api={api} />
        {missingKey && current && <MissingKey session={session} algorithm={current.algorithm} onKeys={onKeys} />}
        <nav className="sidebar" aria-label="Conversations">
          <div className="actions">
            <Link to="/new-room" className="button">New room</Link>
            <Link to="/join" className="button">Join a room</Link>
            <Link to="/new-direct" className="button">Message someone</Link>
          </div>
          <ConversationList path={path} />
        </nav>
        <main className="content">{screen}</main>
      </div>
    </Live>
  );
}

function Welcome() {
  return (
    <section className="welcome" aria-labelledby="welcome-title">
      <h2 id="welcome-title">Welcome</h2>
      <p>Pick a conversation, create a room, join one with an invite code, or message someone by username.</p>
      <p>Messages are encrypted in your browser with post-quantum keys before they leave it.</p>
    </section>
  );
}

function ConnectionBanner({ api }: { api: Api }) {
  const [state, setState] = useState<ConnectionState>(api.connection());
  useEffect(() => api.onConnection(setState), [api]);
  if (state !== 'reconnecting') return null;
  return (
    <p className="banner warning" role="status">
      Connection lost. Reconnecting… New messages will appear once the connection is back.
    </p>
  );
}

// A user signed in on a browser that does not hold its key (another device):
// it cannot open messages sealed to that key. Until key backups (envelope v2)
// land, the way forward is a new key made here.
function MissingKey({ session, algorithm, onKeys }: { session: Session; algorithm: 'ML_KEM_768' | 'X_WING'; onKeys: ShellProps['onKeys'] }) {
  const client = useApolloClient();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const make = async () => {
    setBusy(true);
    setError(null);
    try {
      const kp = generateKeyPair(algorithm);
      const { data } = await client.mutate({ mutation: RotateKeyDocument, variables: { publicKey: b64(kp.publicKey), algorithm } });
      const key = data?.rotateKey.publicKey;
      if (!key) throw new Error('no key in the answer');
      await session.store.putKemKey(session.userId, key.id, kp);
      onKeys(await session.store.keyRing(session.userId));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="banner warning" role="alert">
      <p>This browser does not have your encryption key, so it cannot open messages sent to it. You can make a new key here: new messages will be readable on this browser.</p>
      {error && <p className="error">{error}</p>}
      <button type="button" onClick={() => void make()} disabled={busy}>{busy ? 'Making a key…' : 'Make a new key for this browser'}</button>
    </div>
  );
}
