package resolvers

import (
	"context"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// me returns the authenticated user or UNAUTHENTICATED.
func me(ctx context.Context) (*models.User, error) {
	if u := auth.UserFrom(ctx); u != nil {
		return u, nil
	}
	return nil, models.Unauthenticated("authentication required: send Authorization: Bearer <token>")
}

// subscribe starts a subscription on the caller's topic: each event passes
// through pick, which returns the value to deliver or ok=false to skip it.
// The channel closes when ctx ends or the broker drops the subscriber.
func subscribe[T any](ctx context.Context, r *Resolver, pick func(ctx context.Context, ev *broker.Event) (T, bool)) (<-chan T, error) {
	return subscribeEach(ctx, r, func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool {
		v, ok := pick(ctx, ev)
		return !ok || emit(v)
	})
}

// subscribeEach is subscribe for events that carry several values (a batch of
// receipts): deliver hands each value to emit, which reports false once the
// subscription has ended, and returns false to end it. The expansion happens
// as the event is delivered, at the pace its client reads: the broker and
// its queues carry one event however many values it holds.
//
// No goroutine waits for the events: the broker calls deliver from one
// that runs while events wait. Over the websocket transport
// (graph.RunStream) each value is resolved and written as it is emitted,
// from a response its event's subscribers share if the operation qualifies
// (graph.SharedValues); elsewhere emit waits for the transport to read the
// channel.
func subscribeEach[T any](ctx context.Context, r *Resolver, deliver func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool) (<-chan T, error) {
	u, err := me(ctx)
	if err != nil {
		return nil, err
	}
	release, err := r.acquireSubscription(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan T, 1)
	var write func() bool
	emit := func(v T) bool {
		if write != nil {
			select {
			case out <- v: // room: write took the last one
				return write()
			default: // the transport stopped reading the channel
				return false
			}
		}
		select {
		case out <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	shared := graph.SharedValues(ctx)
	// The event being delivered, for sharedEmit: the broker delivers one
	// event at a time, and one closure serves them all.
	var current *broker.Event
	sharedEmit := func(v T) bool {
		if sent, handled := shared(ctx, current, v); handled {
			return sent
		}
		return emit(v)
	}
	step, end, write := graph.RunStream(ctx,
		func(ev *broker.Event) bool {
			if shared == nil {
				return deliver(ctx, ev, emit)
			}
			current = ev
			ok := deliver(ctx, ev, sharedEmit)
			current = nil
			return ok
		},
		func() { release(); close(out) })
	if err := r.chat.Events(ctx, u.ID, step, end); err != nil {
		// end is ours to call; the transport's waits for this
		// operation's dispatch, which this call is part of.
		go end()
		return nil, err
	}
	return out, nil
}

// roomFilter checks a subscription's caller and its roomId, which must name a
// room the caller is in, and returns the caller.
func (r *Resolver) roomFilter(ctx context.Context, roomID *string) (*models.User, error) {
	u, err := me(ctx)
	if err != nil {
		return nil, err
	}
	if roomID != nil {
		if _, err := r.chat.Membership(ctx, *roomID, u.ID); err != nil {
			return nil, err
		}
	}
	return u, nil
}
