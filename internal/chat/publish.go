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

func (s *Service) publishRoomEvent(ctx context.Context, typ models.RoomEventType, room *models.Room, user *string, extra ...string) {
	users, err := s.roomAudience(ctx, room.ID)
	if err != nil {
		s.log.WarnContext(ctx, "room audience", "err", err)
	}
	users = append(users, extra...)
	snapshot := *room
	s.publish(ctx, users, &broker.Event{Kind: broker.RoomChanged, Room: &models.RoomEvent{Type: typ, Room: &snapshot, UserID: user}})
}
