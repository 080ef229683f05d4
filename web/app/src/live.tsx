// What arrives over the websocket while signed in: new messages (written into
// the cache), room events and typing. One subscription of each for the whole
// app, whichever conversation is open.

import { useApolloClient, useSubscription } from '@apollo/client/react';
import { ConversationsDocument, MessageAddedDocument, MessageDeletedDocument, PresenceDocument, ReadReceiptsDocument, RoomDocumentsDocument, RoomEventsDocument, RoomMemberListDocument, TypingDocument } from '@qchat/client';
import { type ReactNode, createContext, useContext, useEffect, useMemo, useState } from 'react';
import { addMessage, markDeleted } from './api';

/** Who is typing, per conversation key (see conversationKey). */
type Typing = ReadonlyMap<string, ReadonlyMap<string, { username: string; until: number }>>;

const TypingContext = createContext<Typing>(new Map());

/** Who has read each message (message id → user id → username), from the receipts seen live. */
type Receipts = ReadonlyMap<string, ReadonlyMap<string, string>>;

const ReceiptsContext = createContext<Receipts>(new Map());

/** The key of a conversation: its room, or the other user of a direct one. */
export function conversationKey(c: { roomId: string } | { userId: string }): string {
  return 'roomId' in c ? `room:${c.roomId}` : `user:${c.userId}`;
}

// How long a "typing" lasts without a new event: senders repeat it every few seconds.
const TYPING_TTL_MS = 6000;

export function Live({ selfId, children }: { selfId: string; children: ReactNode }) {
  const client = useApolloClient();
  const [typing, setTyping] = useState<Typing>(new Map());
  const [receipts, setReceipts] = useState<Receipts>(new Map());

  const refreshConversations = () => {
    void client.refetchQueries({ include: [ConversationsDocument] }).catch(() => {});
  };
  useSubscription(MessageAddedDocument, {
    variables: {},
    onData: ({ data }) => {
      const m = data.data?.messageAdded;
      if (!m) return;
      addMessage(client.cache, selfId, m);
      // A shared file joins its room's document list, if one is open.
      if (m.attachment && m.room) void client.refetchQueries({ include: [RoomDocumentsDocument] }).catch(() => {});
      // The sender stopped typing once the message is here.
      const key = m.room ? conversationKey({ roomId: m.room.id }) : conversationKey({ userId: m.sender.id });
      setTyping((t) => without(t, key, m.sender.id));
      refreshConversations();
    },
  });
  useSubscription(MessageDeletedDocument, {
    variables: {},
    onData: ({ data }) => {
      const id = data.data?.messageDeleted;
      if (id) markDeleted(client.cache, id);
    },
  });
  useSubscription(RoomEventsDocument, {
    onData: () => {
      refreshConversations();
      void client.refetchQueries({ include: [RoomMemberListDocument] }).catch(() => {});
    },
  });
  useSubscription(PresenceDocument, {
    onData: ({ data }) => {
      const ev = data.data?.presence;
      const id = ev && client.cache.identify({ __typename: 'User', id: ev.user.id });
      if (ev && id) client.cache.modify({ id, fields: { online: () => ev.online } });
    },
  });
  // The API keeps no receipt history a sender can query: "seen by" shows the
  // receipts that arrived while this page was open.
  useSubscription(ReadReceiptsDocument, {
    variables: {},
    onData: ({ data }) => {
      const rc = data.data?.readReceipts;
      if (!rc || rc.user.id === selfId) return;
      setReceipts((cur) => {
        if (cur.get(rc.messageId)?.has(rc.user.id)) return cur;
        const next = new Map(cur);
        next.set(rc.messageId, new Map(cur.get(rc.messageId)).set(rc.user.id, rc.user.username));
        return next;
      });
    },
  });
  useSubscription(TypingDocument, {
    variables: {},
    onData: ({ data }) => {
      const ev = data.data?.typing;
      if (!ev || ev.user.id === selfId) return;
      const key = ev.roomId ? conversationKey({ roomId: ev.roomId }) : conversationKey({ userId: ev.user.id });
      setTyping((t) => {
        if (!ev.isTyping) return without(t, key, ev.user.id);
        const next = new Map(t);
        next.set(key, new Map(t.get(key)).set(ev.user.id, { username: ev.user.username, until: Date.now() + TYPING_TTL_MS }));
        return next;
      });
    },
  });
  // Expire typers whose last event is old (a closed tab sends no "stopped").
  useEffect(() => {
    const t = setInterval(() => {
      const now = Date.now();
      setTyping((cur) => {
        let changed = false;
        const next = new Map<string, ReadonlyMap<string, { username: string; until: number }>>();
        for (const [k, users] of cur) {
          const kept = new Map([...users].filter(([, v]) => v.until > now));
          if (kept.size !== users.size) changed = true;
          if (kept.size > 0) next.set(k, kept);
        }
        return changed ? next : cur;
      });
    }, 1000);
    return () => clearInterval(t);
  }, []);
  return (
    <ReceiptsContext.Provider value={receipts}>
      <TypingContext.Provider value={typing}>{children}</TypingContext.Provider>
    </ReceiptsContext.Provider>
  );
}

function without(t: Typing, key: string, userId: string): Typing {
  const users = t.get(key);
  if (!users?.has(userId)) return t;
  const next = new Map(t);
  const rest = new Map(users);
  rest.delete(userId);
  if (rest.size > 0) next.set(key, rest);
  else next.delete(key);
  return next;
}

/** The names of who is typing in a conversation. */
export function useTyping(key: string): string[] {
  const t = useContext(TypingContext);
  const users = t.get(key);
  return useMemo(() => (users ? [...users.values()].map((u) => u.username).sort() : []), [users]);
}

/** The names of who has read a message (besides this user), sorted. */
export function useSeenBy(messageId: string): string[] {
  const r = useContext(ReceiptsContext);
  const users = r.get(messageId);
  return useMemo(() => (users ? [...users.values()].sort() : []), [users]);
}
