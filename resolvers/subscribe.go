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
// through pick, which returns the value to deliver or ok=false to skip it. The
// goroutine and both channels end when ctx ends or the broker drops the
// subscriber.
func subscribe[T any](ctx context.Context, r *Resolver, pick func(ctx context.Context, ev *broker.Event) (T, bool)) (<-chan T, error) {
	return subscribeEach(ctx, r, func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool {
		v, ok := pick(ctx, ev)
		return !ok || emit(v)
	})
}

// subscribeEach is subscribe for events that carry several values (a batch of
// receipts): deliver hands each value to emit, which reports false once the
// subscription has ended, and returns false to end it. The expansion happens
// here, in the subscriber's own goroutine, at the pace its client reads: the
// broker and its buffers carry one event however many values it holds.
func subscribeEach[T any](ctx context.Context, r *Resolver, deliver func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool) (<-chan T, error) {
	u, err := me(ctx)
	if err != nil {
		return nil, err
	}
	release, err := r.acquireSubscription(ctx)
	if err != nil {
		return nil, err
	}
	in, err := r.chat.Events(ctx, u.ID)
	if err != nil {
		release()
		return nil, err
	}
	out := make(chan T, 1)
	// The websocket transport runs the loop in the goroutine that serves
	// the subscription (graph.RunStream): each value is resolved and
	// written before the next event is read. Elsewhere it runs in a
	// goroutine of its own, feeding the transport's.
	var flush func() bool
	emit := func(v T) bool {
		if flush != nil {
			select {
			case out <- v: // room: write took the last one
				return flush()
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
	loop := func(write func() bool) {
		flush = write
		defer release()
		defer close(out)
		for ev := range in {
			if !deliver(ctx, ev, emit) {
				return
			}
		}
	}
	if !graph.RunStream(ctx, loop) {
		go loop(nil)
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
