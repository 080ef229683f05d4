package chat

import (
	"context"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// publish sends ev to the topics of users. Live delivery is best effort: the
// change is already stored, so a broker failure is logged, not returned.
func (s *Service) publish(ctx context.Context, users []string, ev *broker.Event) {
	topics := make([]string, len(users))
	for i, u := range users {
		topics[i] = broker.UserTopic(u)
	}
	if err := s.broker.Publish(context.WithoutCancel(ctx), topics, ev); err != nil {
		s.log.WarnContext(ctx, "publish event", "kind", ev.Kind, "err", err)
	}
}

// publishKeyChange tells everyone who shares a room or a direct
// conversation with userID that its keys changed, so that their clients
// fetch the new KEM key before sealing and, for a new identity key, warn
// before trusting it. Each contact gets one event, however many
// conversations it shares with the user.
func (s *Service) publishKeyChange(ctx context.Context, userID string, kind models.KeyChangeKind) {
	contacts, err := s.store.Contacts(ctx, userID)
	if err != nil {
		s.log.WarnContext(ctx, "key change contacts", "err", err)
		return
	}
	if len(contacts) == 0 {
		return
	}
	s.publish(ctx, contacts, &broker.Event{Kind: broker.KeyChanged, KeyChange: &models.KeyChange{UserID: userID, Kind: kind}})
}

func (s *Service) publishRoomEvent(ctx context.Context, typ models.RoomEventType, room *models.Room, user *string, extra ...string) {
	users, err := s.roomAudience(ctx, room.ID)
	if err != nil {
		s.log.WarnContext(ctx, "room audience", "err", err)
	}
	users = append(users, extra...)
	snapshot := *room
	s.publish(ctx, users, &broker.Event{Kind: broker.RoomChanged, Room: &models.RoomEvent{Type: typ, Room: &snapshot, UserID: user}})
}
