package chat

import (
	"context"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// Connect counts a new socket of userID and, if it is the user's first on any
// instance, tells the user's contacts that it came online.
func (s *Service) Connect(ctx context.Context, userID string) {
	if online, err := s.presence.Connect(ctx, userID); err != nil {
		s.log.WarnContext(ctx, "presence connect", "err", err)
	} else if online {
		s.announce(ctx, userID, true)
	}
}

// Disconnect counts a closed socket of userID and, if it was the user's last,
// tells the user's contacts that it went offline.
func (s *Service) Disconnect(ctx context.Context, userID string) {
	ctx = context.WithoutCancel(ctx)
	if offline, err := s.presence.Disconnect(ctx, userID); err != nil {
		s.log.WarnContext(ctx, "presence disconnect", "err", err)
	} else if offline {
		s.announce(ctx, userID, false)
	}
}

// announce tells the user's contacts (and the user's own other sockets) that
// it came online or went offline.
func (s *Service) announce(ctx context.Context, userID string, online bool) {
	contacts, err := s.store.Contacts(ctx, userID)
	if err != nil {
		s.log.WarnContext(ctx, "presence contacts", "err", err)
		return
	}
	s.publish(ctx, contacts, &broker.Event{Kind: broker.Presence, Presence: &models.PresenceEvent{UserID: userID, Online: online}})
}

// Online is a user's presence as viewer may see it: the truth for the user
// and for those who share a room or a direct conversation with it (who hear
// its presence events anyway), false for anyone else, so that a stranger
// polling userByUsername(x) { online } cannot watch x come and go. Without a
// viewer (a login's own payload) it is false too.
//
// Sharing is asked first and presence only for those who share: the answer's
// cost, and so its timing, does not depend on a stranger's presence.
func (s *Service) Online(ctx context.Context, viewer *models.User, userID string) (bool, error) {
	if viewer == nil {
		return false, nil
	}
	l := s.Loaders(ctx)
	if userID != viewer.ID {
		shared, err := l.Sharing().Load(ctx, userPair{viewer: viewer.ID, other: userID})
		if err != nil || !shared {
			return false, err
		}
	}
	return l.Online().Load(ctx, userID)
}
