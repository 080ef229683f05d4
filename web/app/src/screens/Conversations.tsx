// The list of conversations (rooms and direct), most recent activity first,
// with unread counts. Live messages refetch it (see live.tsx).

import { useQuery } from '@apollo/client/react';
import { ConversationsDocument, PAGE_SIZE } from '@qchat/client';
import { describeError } from '../errors';
import { Link } from '../router';

export function ConversationList({ path }: { path: string }) {
  const { data, error, loading } = useQuery(ConversationsDocument, {
    variables: { first: PAGE_SIZE.conversations },
    fetchPolicy: 'cache-and-network',
  });
  const edges = data?.conversations.edges ?? [];
  if (error && edges.length === 0) return <p className="error" role="alert">{describeError(error)}</p>;
  if (loading && edges.length === 0) return <p role="status">Loading conversations…</p>;
  if (edges.length === 0) return <p className="hint">No conversations yet.</p>;
  return (
    <ul className="conversations">
      {edges.map(({ node: c }) => {
        const to = c.room ? `/room/${encodeURIComponent(c.room.id)}` : c.user ? `/dm/${encodeURIComponent(c.user.username)}` : null;
        if (!to) return null;
        const name = c.room ? c.room.name : `@${c.user?.username ?? ''}`;
        const kind = c.room ? (c.room.isGroup ? 'Room' : 'Private room') : 'Direct';
        return (
          <li key={to}>
            <Link to={to} current={path === to} className="conversation">
              <span className="name">{name}</span>
              <span className="meta">
                <span className="visually-hidden">{kind}, </span>
                <time dateTime={c.lastActivityAt}>{formatWhen(c.lastActivityAt)}</time>
                {c.unreadCount > 0 && <span className="badge">{c.unreadCount} unread</span>}
              </span>
            </Link>
          </li>
        );
      })}
    </ul>
  );
}

export function formatWhen(iso: string): string {
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}
