package cluster

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// NewClient returns a Redis client for url (redis://host:port/db) tuned for
// a node: short timeouts and no retries, so that while Redis is unreachable
// a call fails within about a second (the session gets `overloaded`) instead
// of piling up; go-redis reconnects by itself when Redis is back.
//
// go-redis logs every failed dial through its own process-wide logger; the
// Redis backend (package redisnode) silences it, since the engine and the
// node log an outage once.
func NewClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	Tune(opt)
	return redis.NewClient(opt), nil
}

// Tune sets the options NewClient uses.
func Tune(opt *redis.Options) {
	opt.DialTimeout = 500 * time.Millisecond
	opt.DialerRetries = 1
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.PoolTimeout = time.Second
	opt.MaxRetries = -1 // a failed call is answered overloaded, not retried
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}
