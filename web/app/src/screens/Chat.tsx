// A conversation: its history (newest page first, older pages on scroll),
// live messages through the cache, typing, and a composer whose sends show
// their state and can be retried.

import { useApolloClient, useQuery } from '@apollo/client/react';
import {
  AddRoomMemberDocument,
  type ConversationRef,
  ConversationsDocument,
  DeleteMessageDocument,
  DeleteRoomDocument,
  DirectMessagesDocument,
  LeaveRoomDocument,
  MarkReadDocument,
  type MessageFieldsFragment,
  PAGE_SIZE,
  type PreparedMessage,
  RemoveRoomMemberDocument,
  RoomDocument,
  RoomDocumentsDocument,
  RoomMemberListDocument,
  type RoomMemberListQuery,
  type RoomMemberListQueryVariables,
  RoomMessagesDocument,
  RotateRoomCodeDocument,
  SendFailedError,
  SetMemberRoleDocument,
  SetTypingDocument,
  UpdateRoomDocument,
  UserByUsernameDocument,
  type OpenedMessage,
  prepareMessage,
  readMessage,
  sendPrepared,
} from '@qchat/client';
import { type FormEvent, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { addMessage, forgetDocument, markDeleted } from '../api';
import { ALLOWED_TYPES, AttachmentError, MAX_FILE_BYTES, type OpenedFile, describeFileError, describeVerified, downloadFile, formatSize, saveFile, uploadFile } from '../attachments';
import { describeError } from '../errors';
import { conversationKey, useSeenBy, useTyping } from '../live';
import type { Session } from '../session';
import { Link, useRouter } from '../router';
import { useTrust } from '../trust';
import { formatWhen } from './Conversations';
import { Documents } from './Documents';

export function RoomChat({ roomId, session }: { roomId: string; session: Session }) {
  const { data, error } = useQuery(RoomDocument, { variables: { id: roomId } });
  const room = data?.room;
  // Sending is blocked while a member's identity key change is not accepted.
  const blockedBy = useChangedMembers(roomId, data?.room?.memberCount);
  if (error) return <p className="error" role="alert">{describeError(error)}</p>;
  if (data && !room) return <p className="error" role="alert">This room does not exist or you are not a member.</p>;
  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-header">
        <h2 id="chat-title">{room?.name ?? 'Loading…'}</h2>
        {room && (
          <span className="hint">
            {room.memberCount} member{room.memberCount === 1 ? '' : 's'}, you are {ROLE_NAMES[room.myRole] ?? room.myRole.toLowerCase()}
          </span>
        )}
        {room?.code && <InviteCode code={room.code} />}
        {room && <Members roomId={room.id} count={room.memberCount} myRole={room.myRole} selfId={session.userId} />}
        {room && <Documents roomId={room.id} session={session} />}
        {room && (room.myRole === 'OWNER' || room.myRole === 'ADMIN') && <ManageRoom roomId={room.id} name={room.name} owner={room.myRole === 'OWNER'} />}
        {room && <LeaveRoom roomId={room.id} name={room.name} />}
      </header>
      <Conversation conversation={{ roomId }} session={session} blockedBy={blockedBy} />
    </section>
  );
}

/**
 * The usernames of the room's members whose identity key changed and is not
 * accepted yet. Only while some contact changed (rarely) are the members
 * looked through, every page of them (again when the room's member count
 * changes): a changed member beyond the first page
 * blocks the composer as well. (The library refuses to seal to such a member
 * anyway: its recipients come from every page.)
 */
function useChangedMembers(roomId: string, memberCount: number | undefined): string[] {
  const client = useApolloClient();
  const { changed } = useTrust();
  const [found, setFound] = useState<string[]>([]);
  useEffect(() => {
    if (changed.size === 0) return;
    let live = true;
    (async () => {
      const names: string[] = [];
      let after: string | null = null;
      for (;;) {
        const variables: RoomMemberListQueryVariables = { id: roomId, first: PAGE_SIZE.members, after };
        const { data } = await client.query({ query: RoomMemberListDocument, variables, fetchPolicy: 'network-only' });
        const conn: NonNullable<RoomMemberListQuery['room']>['membersConnection'] | undefined = data?.room?.membersConnection;
        if (!conn) break;
        for (const e of conn.edges) if (changed.has(e.node.user.id)) names.push(e.node.user.username);
        if (!conn.pageInfo.hasNextPage || !conn.pageInfo.endCursor) break;
        after = conn.pageInfo.endCursor;
      }
      if (live) setFound(names);
    })().catch(() => {
      // Not knowing blocks nothing here: the library still refuses to seal to a changed member.
    });
    return () => {
      live = false;
    };
    // A member who joins or is added (the count changes) is looked for too.
  }, [client, roomId, changed, memberCount]);
  if (changed.size === 0) return [];
  // While the members are looked through again, one found before and still changed keeps blocking.
  return found.filter((n) => [...changed.values()].some((c) => c.username === n));
}

export function DirectChat({ username, session }: { username: string; session: Session }) {
  const { data, error } = useQuery(UserByUsernameDocument, { variables: { username } });
  const user = data?.userByUsername;
  const trust = useTrust();
  const { check } = trust;
  const peerId = user?.id;
  // A change that happened while this page was closed shows when the conversation opens.
  useEffect(() => {
    if (peerId) void check(peerId);
  }, [peerId, check]);
  if (error) return <p className="error" role="alert">{describeError(error)}</p>;
  if (data && !user) return <p className="error" role="alert">There is no user named {username}.</p>;
  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-header">
        <h2 id="chat-title">@{username}</h2>
        {user && <span className="hint">{user.online ? 'online' : 'offline'}</span>}
        {user && user.id !== session.userId && <Link to={`/safety/${encodeURIComponent(username)}`}>Safety number</Link>}
      </header>
      {user && <Conversation conversation={{ userId: user.id }} session={session} blockedBy={trust.changed.has(user.id) ? [user.username] : []} />}
    </section>
  );
}

const ROLE_NAMES: Record<string, string> = { OWNER: 'owner', ADMIN: 'admin', MEMBER: 'member' };

// The room's members with their roles and presence (kept live by the
// presence subscription, which updates each User in the cache).
function Members({ roomId, count, myRole, selfId }: { roomId: string; count: number; myRole: string; selfId: string }) {
  const client = useApolloClient();
  const [open, setOpen] = useState(false);
  const [removeError, setRemoveError] = useState<string | null>(null);
  // The owner removes anyone else; an admin removes plain members.
  const mayRemove = (role: string, id: string) => id !== selfId && role !== 'OWNER' && (myRole === 'OWNER' || (myRole === 'ADMIN' && role === 'MEMBER'));
  const remove = async (userId: string) => {
    setRemoveError(null);
    try {
      await client.mutate({ mutation: RemoveRoomMemberDocument, variables: { roomId, userId }, refetchQueries: [RoomMemberListDocument] });
    } catch (err) {
      setRemoveError(describeError(err));
    }
  };
  const setRole = async (userId: string, role: 'ADMIN' | 'MEMBER') => {
    setRemoveError(null);
    try {
      await client.mutate({ mutation: SetMemberRoleDocument, variables: { roomId, userId, role }, refetchQueries: [RoomMemberListDocument] });
    } catch (err) {
      setRemoveError(describeError(err));
    }
  };
  const { data, error } = useQuery(RoomMemberListDocument, { variables: { id: roomId, first: PAGE_SIZE.members }, skip: !open });
  const members = data?.room?.membersConnection.edges.map((e) => e.node) ?? [];
  return (
    <div className="members">
      <button type="button" className="secondary" aria-expanded={open} aria-controls="member-list" onClick={() => setOpen(!open)}>
        Members ({count})
      </button>
      {open && (
        <ul id="member-list" aria-label="Members">
          {error && <li className="error" role="alert">{describeError(error)}</li>}
          {removeError && <li className="error" role="alert">{removeError}</li>}
          {members.map((m) => (
            <li key={m.user.id}>
              <span className="sender">{m.user.username}</span>, {ROLE_NAMES[m.role] ?? m.role.toLowerCase()},{' '}
              <span className={m.user.online ? 'online' : 'hint'}>{m.user.online ? 'online' : 'offline'}</span>
              {m.user.id !== selfId && (
                <>
                  {' '}
                  <Link to={`/safety/${encodeURIComponent(m.user.username)}`} className="small">Safety number of {m.user.username}</Link>
                </>
              )}
              {myRole === 'OWNER' && m.role !== 'OWNER' && (
                <>
                  {' '}
                  <button type="button" className="link" onClick={() => void setRole(m.user.id, m.role === 'ADMIN' ? 'MEMBER' : 'ADMIN')}>
                    {m.role === 'ADMIN' ? `Make ${m.user.username} a member` : `Make ${m.user.username} an admin`}
                  </button>
                </>
              )}
              {mayRemove(m.role, m.user.id) && (
                <>
                  {' '}
                  <button type="button" className="link" onClick={() => void remove(m.user.id)}>Remove {m.user.username}</button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// What an owner (everything) or an admin (adding members) manages of a room.
function ManageRoom({ roomId, name, owner }: { roomId: string; name: string; owner: boolean }) {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [open, setOpen] = useState(false);
  const [newName, setNewName] = useState(name);
  const [username, setUsername] = useState('');
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (what: () => Promise<string | null>) => {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      setStatus(await what());
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const rename = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await client.mutate({ mutation: UpdateRoomDocument, variables: { roomId, name: newName.trim() }, refetchQueries: [ConversationsDocument] });
      return 'Renamed.';
    });
  };
  const rotate = () =>
    void run(async () => {
      await client.mutate({ mutation: RotateRoomCodeDocument, variables: { roomId } });
      return 'New invite code made: the old one no longer works.';
    });
  const add = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const who = username.trim();
      const { data } = await client.query({ query: UserByUsernameDocument, variables: { username: who }, fetchPolicy: 'network-only' });
      const user = data?.userByUsername;
      if (!user) {
        setError(`There is no user named ${who}.`);
        return null;
      }
      await client.mutate({ mutation: AddRoomMemberDocument, variables: { roomId, userId: user.id }, refetchQueries: [RoomMemberListDocument] });
      setUsername('');
      return `${who} added.`;
    });
  };
  const remove = () =>
    void run(async () => {
      await client.mutate({ mutation: DeleteRoomDocument, variables: { roomId }, refetchQueries: [ConversationsDocument] });
      navigate('/');
      client.cache.evict({ id: client.cache.identify({ __typename: 'Room', id: roomId }) });
      client.cache.gc();
      return null;
    });
  return (
    <div className="manage">
      <button type="button" className="secondary" aria-expanded={open} aria-controls="manage-room" onClick={() => setOpen(!open)}>
        Manage room
      </button>
      {open && (
        <div id="manage-room" role="group" aria-label="Manage room">
          {owner && (
            <form onSubmit={rename}>
              <label htmlFor="room-new-name">New room name</label>
              <input id="room-new-name" value={newName} required maxLength={100} onChange={(e) => setNewName(e.target.value)} />
              <button type="submit" disabled={busy}>Rename room</button>
            </form>
          )}
          <form onSubmit={add}>
            <label htmlFor="room-add-member">Add member by username</label>
            <input id="room-add-member" value={username} required autoComplete="off" onChange={(e) => setUsername(e.target.value)} />
            <button type="submit" disabled={busy}>Add member</button>
          </form>
          {owner && (
            <p>
              <button type="button" onClick={rotate} disabled={busy}>Rotate invite code</button>
            </p>
          )}
          {owner &&
            (confirmDelete ? (
              <div className="confirm" role="group" aria-label={`Delete ${name}?`}>
                <span>Delete {name} and all its messages for everyone? This cannot be undone.</span>
                <button type="button" onClick={remove} disabled={busy}>Yes, delete {name}</button>
                <button type="button" className="secondary" onClick={() => setConfirmDelete(false)}>Keep it</button>
              </div>
            ) : (
              <p>
                <button type="button" className="secondary" onClick={() => setConfirmDelete(true)}>Delete room</button>
              </p>
            ))}
          <p role="status" className="hint">{status}</p>
          {error && <p className="error" role="alert">{error}</p>}
        </div>
      )}
    </div>
  );
}

function LeaveRoom({ roomId, name }: { roomId: string; name: string }) {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const leave = async () => {
    setBusy(true);
    setError(null);
    try {
      await client.mutate({ mutation: LeaveRoomDocument, variables: { roomId }, refetchQueries: [ConversationsDocument] });
      navigate('/');
      // Its messages are no longer this user's to see.
      client.cache.evict({ id: client.cache.identify({ __typename: 'Room', id: roomId }) });
      client.cache.gc();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };
  if (!confirming) {
    return (
      <button type="button" className="secondary" onClick={() => setConfirming(true)}>
        Leave room
      </button>
    );
  }
  return (
    <div className="confirm" role="group" aria-label={`Leave ${name}?`}>
      <span>Leave {name}? Coming back needs its invite code.</span>
      <button type="button" onClick={() => void leave()} disabled={busy}>Yes, leave {name}</button>
      <button type="button" className="secondary" onClick={() => setConfirming(false)}>Stay</button>
      {error && <span className="error" role="alert">{error}</span>}
    </div>
  );
}

function InviteCode({ code }: { code: string }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(code);
      setCopied('Copied.');
    } catch {
      setCopied('Copying is not allowed here: select the code and copy it.');
    }
  };
  return (
    <div className="invite">
      <span>
        Invite code: <code aria-label="Invite code">{code}</code>
      </span>
      <button type="button" onClick={() => void copy()}>Copy invite code</button>
      <span role="status" className="hint">{copied}</span>
    </div>
  );
}

interface Pending {
  readonly localId: string;
  readonly text: string;
  readonly status: 'sending' | 'failed';
  readonly error?: string;
  readonly prepared?: PreparedMessage;
}

function useMessages(c: ConversationRef) {
  const isRoom = 'roomId' in c;
  const room = useQuery(RoomMessagesDocument, {
    variables: { roomId: isRoom ? c.roomId : '', first: PAGE_SIZE.messages },
    skip: !isRoom,
    fetchPolicy: 'cache-and-network',
  });
  const direct = useQuery(DirectMessagesDocument, {
    variables: { withUserId: isRoom ? '' : c.userId, first: PAGE_SIZE.messages },
    skip: isRoom,
    fetchPolicy: 'cache-and-network',
  });
  const conn = isRoom ? room.data?.room?.messages : direct.data?.directMessages;
  const loadOlder = async () => {
    const after = conn?.pageInfo.endCursor;
    if (!after || !conn?.pageInfo.hasNextPage) return;
    if (isRoom) await room.fetchMore({ variables: { after } });
    else await direct.fetchMore({ variables: { after } });
  };
  return {
    messages: conn?.edges.map((e) => e.node) ?? [],
    hasOlder: conn?.pageInfo.hasNextPage ?? false,
    loading: isRoom ? room.loading : direct.loading,
    error: isRoom ? room.error : direct.error,
    loadOlder,
  };
}

function Conversation({ conversation, session, blockedBy }: { conversation: ConversationRef; session: Session; blockedBy: readonly string[] }) {
  const client = useApolloClient();
  const trust = useTrust();
  const { messages, hasOlder, loading, error, loadOlder } = useMessages(conversation);
  const [pending, setPending] = useState<readonly Pending[]>([]);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [olderError, setOlderError] = useState<string | null>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const marked = useRef(new Set<string>());
  const typing = useTyping(conversationKey(conversation));

  // Oldest first on screen; the API pages newest first.
  const shown = [...messages].reverse();
  const newestId = shown[shown.length - 1]?.id;
  const shownIds = new Set(shown.map((m) => m.id));

  // The live region: a message that arrives from someone else while the
  // conversation is open is announced once, with its text once opened. (The
  // log itself is not live: loading history, older pages and "Decrypting…"
  // would be read out too.) The newest message when the history first showed
  // is the baseline: nothing up to it is announced.
  const baseline = useRef<string | null | undefined>(undefined);
  const [announce, setAnnounce] = useState<{ id: string; text: string | null } | null>(null);
  const newest = messages[0];
  useEffect(() => {
    if (baseline.current === undefined) {
      if (!loading || newest) baseline.current = newest?.id ?? null;
      return;
    }
    if (!newest || newest.id === baseline.current) return;
    baseline.current = newest.id;
    if (newest.sender.id !== session.userId && !newest.deleted) setAnnounce({ id: newest.id, text: null });
  }, [newest, loading, session.userId]);
  const announced = useCallback(
    (id: string, text: string | null) => setAnnounce((a) => (a?.id === id && a.text === null ? { id, text: text ?? 'a message this browser cannot open' } : a)),
    [],
  );
  const announcement = announce?.text ? `New message from ${messages.find((m) => m.id === announce.id)?.sender.username ?? 'someone'}: ${announce.text}` : '';

  // Keep the view at the bottom when new messages come, unless the person scrolled up.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [newestId, pending.length]);

  // Mark what this user received as read; the list's unread counts follow.
  useEffect(() => {
    const ids = messages.filter((m) => m.sender.id !== session.userId && !m.deleted && m.myKey && !m.myKey.readAt && !marked.current.has(m.id)).map((m) => m.id);
    if (ids.length === 0) return;
    for (const id of ids) marked.current.add(id);
    client
      .mutate({ mutation: MarkReadDocument, variables: { messageIds: ids }, refetchQueries: [ConversationsDocument] })
      .catch(() => {
        for (const id of ids) marked.current.delete(id);
      });
  }, [messages, client, session.userId]);

  const older = async () => {
    const el = listRef.current;
    const before = el ? el.scrollHeight - el.scrollTop : 0;
    setLoadingOlder(true);
    setOlderError(null);
    try {
      await loadOlder();
      // Keep the messages the person was reading where they were.
      requestAnimationFrame(() => {
        if (el) el.scrollTop = el.scrollHeight - before;
      });
    } catch (err) {
      setOlderError(describeError(err));
    } finally {
      setLoadingOlder(false);
    }
  };

  const onScroll = () => {
    const el = listRef.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 40 && hasOlder && !loadingOlder) void older();
  };

  const update = (localId: string, p: Partial<Pending> | null) =>
    setPending((list) => (p === null ? list.filter((x) => x.localId !== localId) : list.map((x) => (x.localId === localId ? { ...x, ...p } : x))));

  const deliver = async (localId: string, text: string, prepared?: PreparedMessage) => {
    let latest = prepared;
    try {
      latest ??= await prepareMessage(client, session, conversation, text);
      update(localId, { prepared: latest });
      const m = await sendPrepared(client, session, latest, { onResealed: (p) => (latest = p) });
      addMessage(client.cache, session.userId, m);
      update(localId, null);
      void client.refetchQueries({ include: [ConversationsDocument] }).catch(() => {});
    } catch (err) {
      if (err instanceof SendFailedError) latest = err.prepared;
      // An identity change shows the warning; the failed message stays, to retry once accepted.
      trust.report(err);
      update(localId, { status: 'failed', error: describeError(err), ...(latest ? { prepared: latest } : {}) });
    }
  };

  const send = (text: string) => {
    const localId = crypto.randomUUID();
    stick.current = true;
    setPending((list) => [...list, { localId, text, status: 'sending' }]);
    void deliver(localId, text);
  };

  const retry = (p: Pending) => {
    update(p.localId, { status: 'sending' });
    void deliver(p.localId, p.text, p.prepared);
  };

  return (
    <>
      {error && messages.length === 0 && <p className="error" role="alert">{describeError(error)}</p>}
      <ol className="messages" ref={listRef} onScroll={onScroll} role="log" aria-live="off" aria-label="Messages" tabIndex={0}>
        {hasOlder && (
          <li className="older">
            <button type="button" onClick={() => void older()} disabled={loadingOlder}>{loadingOlder ? 'Loading older messages…' : 'Load older messages'}</button>
            {olderError && <span className="error" role="alert">{olderError}</span>}
          </li>
        )}
        {loading && messages.length === 0 && <li className="hint">Loading messages…</li>}
        {!loading && shown.length === 0 && pending.length === 0 && <li className="hint">No messages yet. Say hello!</li>}
        {shown.map((m) => (
          <MessageItem key={m.id} m={m} session={session} onOpened={m.id === announce?.id ? announced : undefined} />
        ))}
        {pending
          // The live copy can arrive before the send's answer: show it once.
          .filter((p) => !(p.prepared && shownIds.has(p.prepared.id)))
          .map((p) => (
            <li key={p.localId} className="message mine pending">
              <p className="text">{p.text}</p>
              {p.status === 'sending' ? (
                <p className="state">Sending…</p>
              ) : (
                <p className="state error" role="alert">
                  Not sent: {p.error}{' '}
                  <button type="button" onClick={() => retry(p)}>Retry sending</button>
                </p>
              )}
            </li>
          ))}
      </ol>
      <p className="visually-hidden" role="status" aria-label="New message">{announcement}</p>
      <p className="typing" role="status">
        {typing.length === 1 ? `${typing[0]} is typing…` : typing.length > 1 ? `${typing.join(', ')} are typing…` : ''}
      </p>
      {blockedBy.length > 0 && (
        <p className="blocked" id="composer-blocked">
          Sending is blocked: {blockedBy.join(', ')} {blockedBy.length === 1 ? 'has' : 'have'} a new identity key. Compare safety numbers and accept the new key first.
        </p>
      )}
      <Composer conversation={conversation} onSend={send} blocked={blockedBy.length > 0} />
      <AttachFile conversation={conversation} session={session} blocked={blockedBy.length > 0} />
    </>
  );
}

function MessageItem({ m, session, onOpened }: { m: MessageFieldsFragment; session: Session; onOpened?: ((id: string, text: string | null) => void) | undefined }) {
  const client = useApolloClient();
  const [opened, setOpened] = useState<OpenedMessage | null | undefined>(undefined);
  useEffect(() => {
    if (m.deleted) return;
    let live = true;
    readMessage(client, session, m, (id) => session.keyRing.get(id))
      .then((o) => live && setOpened(o))
      .catch(() => live && setOpened(null));
    return () => {
      live = false;
    };
  }, [m, session, client]);
  useEffect(() => {
    if (opened !== undefined) onOpened?.(m.id, opened?.text ?? null);
  }, [opened, onOpened, m.id]);
  const mine = m.sender.id === session.userId;
  const text = opened?.text ?? (opened === null ? null : undefined);
  const seenBy = useSeenBy(m.id).filter((name) => name !== m.sender.username);
  return (
    <li className={mine ? 'message mine' : 'message'}>
      <p className="from">
        <span className="sender">{mine ? 'You' : m.sender.username}</span> <time dateTime={m.createdAt}>{formatWhen(m.createdAt)}</time>
        {opened && !opened.verified && !m.deleted && <span className="unverified">sender not verified</span>}
        {mine && !m.deleted && <DeleteMessage id={m.id} text={text} />}
      </p>
      {m.deleted ? (
        <p className="text deleted">Message deleted</p>
      ) : text === undefined ? (
        <p className="text hint">Decrypting…</p>
      ) : text === null ? (
        <p className="text deleted">Cannot open this message on this browser: it was sealed to a key this browser does not have, or its signature does not verify.</p>
      ) : (
        // Text only: React escapes it; nothing in a message is ever parsed as HTML.
        <p className="text">{text}</p>
      )}
      {m.attachment && !m.deleted && <Attachment doc={m.attachment} session={session} />}
      {!m.attachment && m.attachmentId && !m.deleted && <p className="attachment deleted">The attached file was deleted by the person who shared it.</p>}
      {seenBy.length > 0 && !m.deleted && <p className="seen hint">Seen by {seenBy.join(', ')}</p>}
    </li>
  );
}

// Deleting one's own message leaves a tombstone for everyone (after a confirmation).
function DeleteMessage({ id, text }: { id: string; text: string | null | undefined }) {
  const client = useApolloClient();
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const what = text ? `“${text.length > 30 ? `${text.slice(0, 30)}…` : text}”` : 'this message';
  const remove = async () => {
    setError(null);
    try {
      await client.mutate({ mutation: DeleteMessageDocument, variables: { id } });
      markDeleted(client.cache, id);
    } catch (err) {
      setError(describeError(err));
    }
  };
  if (!confirming) {
    return (
      <button type="button" className="link" aria-label={`Delete ${what}`} onClick={() => setConfirming(true)}>
        Delete
      </button>
    );
  }
  return (
    <span className="confirm">
      <button type="button" className="link" onClick={() => void remove()}>Delete for everyone</button>
      <button type="button" className="link" onClick={() => setConfirming(false)}>Keep</button>
      {error && <span className="error" role="alert">{error}</span>}
    </span>
  );
}

// How often "typing" is repeated while a person keeps typing.
const TYPING_REPEAT_MS = 3000;

function Composer({ conversation, onSend, blocked }: { conversation: ConversationRef; onSend: (text: string) => void; blocked: boolean }) {
  const client = useApolloClient();
  const [text, setText] = useState('');
  const lastTyping = useRef(0);
  const target = 'roomId' in conversation ? { roomId: conversation.roomId } : { recipientId: conversation.userId };
  const typing = (isTyping: boolean) => {
    void client.mutate({ mutation: SetTypingDocument, variables: { ...target, isTyping } }).catch(() => {});
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = text.trim();
    if (!t || blocked) return;
    setText('');
    if (lastTyping.current) {
      lastTyping.current = 0;
      typing(false);
    }
    onSend(t);
  };
  return (
    <form className="composer" onSubmit={submit}>
      <label className="visually-hidden" htmlFor="composer-input">Message</label>
      <textarea
        id="composer-input"
        rows={1}
        aria-describedby={blocked ? 'composer-blocked' : undefined}
        value={text}
        placeholder="Write a message"
        onChange={(e) => {
          setText(e.target.value);
          const now = Date.now();
          if (e.target.value && now - lastTyping.current > TYPING_REPEAT_MS) {
            lastTyping.current = now;
            typing(true);
          }
        }}
        onKeyDown={(e) => {
          // Enter sends, Shift+Enter makes a new line.
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) submit(e);
        }}
        onBlur={() => {
          if (lastTyping.current) {
            lastTyping.current = 0;
            typing(false);
          }
        }}
      />
      <button type="submit" disabled={blocked}>Send</button>
    </form>
  );
}

// Attaching a file: sealed, uploaded with its progress shown, then shared by
// a message whose text is the file's name.
function AttachFile({ conversation, session, blocked }: { conversation: ConversationRef; session: Session; blocked: boolean }) {
  const client = useApolloClient();
  const [progress, setProgress] = useState<{ name: string; fraction: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const attach = async (file: File) => {
    setError(null);
    if (!ALLOWED_TYPES.includes(file.type)) {
      setError(`${file.name} cannot be sent: only images (JPEG, PNG, GIF, WebP), PDF, Word and plain text files can.`);
      return;
    }
    if (file.size > MAX_FILE_BYTES) {
      setError(`${file.name} is too large: at most 10 MiB.`);
      return;
    }
    setProgress({ name: file.name, fraction: 0 });
    try {
      const attachmentId = await uploadFile(client, session.token, session, conversation, file, (fraction) => setProgress({ name: file.name, fraction }));
      const prepared = await prepareMessage(client, session, conversation, file.name, { attachmentId });
      addMessage(client.cache, session.userId, await sendPrepared(client, session, prepared));
      void client.refetchQueries({ include: [ConversationsDocument, RoomDocumentsDocument] }).catch(() => {});
    } catch (err) {
      setError(`${file.name} was not sent: ${describeFileError(err)}`);
    } finally {
      setProgress(null);
    }
  };
  return (
    <div className="attach">
      <label htmlFor="attach-file">Attach a file</label>
      <input
        id="attach-file"
        type="file"
        accept={ALLOWED_TYPES.join(',')}
        disabled={progress !== null || blocked}
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) void attach(file);
        }}
      />
      {progress && (
        <span role="status">
          Uploading {progress.name}… <progress aria-label={`Uploading ${progress.name}`} max={1} value={progress.fraction} /> {Math.round(progress.fraction * 100)}%
        </span>
      )}
      {error && <span className="error" role="alert">{error}</span>}
    </div>
  );
}

interface AttachmentInfo {
  readonly id: string;
  readonly name: string;
  readonly mimeType: string;
  readonly size: number;
}

// An attached file: an image shows inline (decrypted into a blob: URL); any
// file downloads decrypted. Once opened, it shows whether its own signature
// (the uploader's, which may not be the message's sender) verified. A file
// its uploader deleted meanwhile turns into the tombstone the message shows.
function Attachment({ doc, session }: { doc: AttachmentInfo; session: Session }) {
  const client = useApolloClient();
  const [preview, setPreview] = useState<string | null>(null);
  const [opened, setOpened] = useState<OpenedFile | null>(null);
  const [error, setError] = useState<string | null>(null);
  const image = doc.mimeType.startsWith('image/');
  const open = async () => {
    try {
      const f = await downloadFile(client, session.token, session, doc.id, (id) => session.keyRing.get(id));
      setOpened(f);
      return f;
    } catch (err) {
      if (err instanceof AttachmentError && err.gone) forgetDocument(client.cache, doc.id);
      throw err;
    }
  };
  useEffect(() => {
    if (!image) return;
    let url: string | null = null;
    let live = true;
    open()
      .then((f) => {
        if (!live) return;
        url = URL.createObjectURL(new Blob([f.bytes], { type: doc.mimeType }));
        setPreview(url);
      })
      .catch((err: unknown) => live && setError(describeFileError(err)));
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [doc.id, image]);
  const download = async () => {
    setError(null);
    try {
      saveFile((await open()).bytes, doc.name, doc.mimeType);
    } catch (err) {
      setError(describeFileError(err));
    }
  };
  return (
    <div className="attachment">
      {preview && <img src={preview} alt={doc.name} />}
      <span className="hint">
        {doc.name}, {formatSize(doc.size)}
      </span>{' '}
      <button type="button" className="link" onClick={() => void download()}>Download {doc.name}</button>
      {opened && <span className={opened.verified ? 'verified' : 'unverified'}>{describeVerified(opened)}</span>}
      {error && <span className="error" role="alert">{error}</span>}
    </div>
  );
}
