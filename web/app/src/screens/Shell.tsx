// The signed-in screen: header, the conversation list and the open screen.
// Below 700 px only one of list and screen shows, by route.

import { useQuery } from '@apollo/client/react';
import { MeDocument, b64, hasErrorCode } from '@qchat/client';
import { useEffect, useRef, useState } from 'react';
import { useFocusHeading } from '../focus';
import type { Api, ConnectionState } from '../api';
import { Live } from '../live';
import { TrustProvider } from '../trust';
import { Link, param, useRouter } from '../router';
import type { Session } from '../session';
import { DirectChat, RoomChat } from './Chat';
import { ConversationList } from './Conversations';
import { CreateRoom, JoinRoom, NewDirect } from './Forms';
import { BackupOffer, IdentityWarnings, RestoreKeys, SafetyNumber, Settings } from './Keys';

interface ShellProps {
  session: Session;
  api: Api;
  onSignOut: () => Promise<void>;
  /** Reloads the session's keys from the store (after a restore, a rotation, new keys). */
  onKeys: () => Promise<void>;
}

export function Shell({ session, api, onSignOut, onKeys }: ShellProps) {
  const { path } = useRouter();
  const me = useQuery(MeDocument);
  useEffect(() => {
    if (me.error && hasErrorCode(me.error, 'UNAUTHENTICATED')) void onSignOut();
  }, [me.error, onSignOut]);

  const roomId = param(path, '/room/');
  const dmName = param(path, '/dm/');
  const safetyName = param(path, '/safety/');
  const user = me.data?.me ?? null;
  // Without its keys (a new browser, or a key made elsewhere) this browser
  // can neither read nor send: restoring them comes first.
  const current = user?.publicKey ?? null;
  // A current key this session does not hold may just have been made here
  // (the answer reaches the cache before the session reloads its keys): the
  // store is read again before the key counts as missing.
  const [reread, setReread] = useState<string | null>(null);
  const unknownKey = current !== null && !session.keyRing.has(current.id) ? current.id : null;
  useEffect(() => {
    if (unknownKey) void onKeys().finally(() => setReread(unknownKey));
  }, [unknownKey, onKeys]);
  const needsKeys =
    user !== null &&
    (!session.identity || user.identityKey === null || user.identityKey.key !== b64(session.identity.publicKey) || (unknownKey !== null && reread === unknownKey));
  let screen;
  if (needsKeys && user) screen = <RestoreKeys session={session} me={user} onKeys={onKeys} />;
  else if (path === '/settings') screen = <Settings session={session} onKeys={onKeys} />;
  else if (safetyName) screen = <SafetyNumber key={safetyName} username={safetyName} session={session} />;
  else if (roomId) screen = <RoomChat key={roomId} roomId={roomId} session={session} />;
  else if (dmName) screen = <DirectChat key={dmName} username={dmName} session={session} />;
  else if (path === '/new-room') screen = <CreateRoom />;
  else if (path === '/join' || path.startsWith('/join/')) screen = <JoinRoom initialCode={param(path, '/join/') ?? ''} />;
  else if (path === '/new-direct') screen = <NewDirect />;
  else screen = <Welcome />;
  const home = screen.type === Welcome;
  // A new screen (or restoring keys done) moves the focus to its heading.
  const main = useRef<HTMLElement>(null);
  useFocusHeading(main, needsKeys ? 'restore-keys' : path);

  return (
    <Live selfId={session.userId}>
      <TrustProvider session={session}>
      <div className={home ? 'shell at-home' : 'shell'}>
        <header className="topbar">
          <Link to="/" className="brand">QChat</Link>
          <span className="whoami">Signed in as <strong>{session.username}</strong></span>
          <Link to="/settings" className="button secondary" current={path === '/settings'}>Settings</Link>
          <button type="button" onClick={() => void onSignOut()}>Sign out</button>
        </header>
        <ConnectionBanner api={api} />
        {!needsKeys && path !== '/settings' && <BackupOffer session={session} />}
        <IdentityWarnings />
        <nav className="sidebar" aria-label="Conversations">
          <div className="actions">
            <Link to="/new-room" className="button">New room</Link>
            <Link to="/join" className="button">Join a room</Link>
            <Link to="/new-direct" className="button">Message someone</Link>
          </div>
          <ConversationList path={path} />
        </nav>
        <main className="content" ref={main}>{screen}</main>
      </div>
      </TrustProvider>
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
