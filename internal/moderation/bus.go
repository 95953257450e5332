package moderation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/identity"
)

// Op is what a Change does.
type Op string

// The changes a node tells the others about.
const (
	OpBan   Op = "ban"
	OpUnban Op = "unban"
)

// Change is one ban or unban, as published to every node of a deployment.
type Change struct {
	Node     string        `json:"node"` // the publisher, which has applied it already
	Op       Op            `json:"op"`
	Identity identity.Hash `json:"identity"`
	Until    *time.Time    `json:"until,omitempty"` // OpBan: nil is permanent
}

func (c Change) valid() error {
	if _, err := identity.ParseHash(string(c.Identity)); err != nil {
		return err
	}
	if c.Op != OpBan && c.Op != OpUnban {
		return fmt.Errorf("unknown op %q", c.Op)
	}
	return nil
}

// Bus carries Changes between the nodes of a deployment. It is a fast path
// only: a message lost (a node or Redis restarting) is healed by the
// Service's periodic reload of the bans from the store.
type Bus interface {
	// Publish sends c to every subscriber.
	Publish(ctx context.Context, c Change) error
	// Subscribe returns once the subscription is in place; the Changes
	// published from then on arrive on the channel, across reconnects,
	// until ctx ends and the channel is closed.
	Subscribe(ctx context.Context) (<-chan Change, error)
}

// RedisBus is a Bus on one Redis pub/sub channel.
type RedisBus struct {
	client  redis.UniversalClient
	channel string
	log     *slog.Logger
}

// NewRedisBus returns a Bus on the channel prefix+"mod:bans" of client
// (prefix is the deployment's key prefix, as the cluster's). A nil log
// discards.
func NewRedisBus(client redis.UniversalClient, prefix string, log *slog.Logger) *RedisBus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisBus{client: client, channel: prefix + "mod:bans", log: log}
}

// Publish publishes c as JSON.
func (b *RedisBus) Publish(ctx context.Context, c Change) error {
	msg, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("moderation bus: %w", err)
	}
	if err := b.client.Publish(ctx, b.channel, msg).Err(); err != nil {
		return fmt.Errorf("moderation bus: publish: %w", err)
	}
	return nil
}

// subscribeTimeout bounds the wait for a subscription's confirmation.
const subscribeTimeout = 2 * time.Second

// busHealthCheck is how often a quiet subscription is pinged, so that a
// dead connection is noticed and go-redis reconnects and resubscribes.
const busHealthCheck = time.Second

// Subscribe subscribes to the channel. go-redis reconnects and resubscribes
// by itself after a broken connection (a Redis restart); what was published
// meanwhile is lost, which the Service's reload heals.
func (b *RedisBus) Subscribe(ctx context.Context) (<-chan Change, error) {
	ps := b.client.Subscribe(ctx, b.channel)
	// The confirmation's wait is bounded: with Redis away, Run goes on
	// reloading from the store and tries again later.
	confirm, cancel := context.WithTimeout(ctx, subscribeTimeout)
	_, err := ps.Receive(confirm) // the subscribe confirmation
	cancel()
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("moderation bus: subscribe %s: %w", b.channel, err)
	}
	in := ps.Channel(redis.WithChannelHealthCheckInterval(busHealthCheck))
	out := make(chan Change, 64)
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			var m *redis.Message
			select {
			case <-ctx.Done():
				return
			case m = <-in:
				if m == nil {
					return
				}
			}
			var c Change
			err := json.Unmarshal([]byte(m.Payload), &c)
			if err == nil {
				err = c.valid()
			}
			if err != nil {
				b.log.Warn("moderation bus: message ignored", "err", err)
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
