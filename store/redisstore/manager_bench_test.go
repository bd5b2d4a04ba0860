package redisstore_test

// BenchmarkManagerRoundTrips: the Redis round trips of a Manager over the Redis store (the
// counterpart of the core's BenchmarkManagerStoreRoundTrips, which counts filestore.Store calls),
// against the Redis server of the tests (see testClient). Run:
//
//	go test -run '^$' -bench ManagerRoundTrips -benchmem -count=1 .

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tokenkit/oauth2refresh/store/storetest"
)

// roundTrips is a go-redis hook that counts what the client sends: each command, and each
// pipeline (its commands go in one write and come back together), is one round trip. A retry
// goes through the hook again, but testClient turns retries off. Dials (with their HELLO
// handshake, which the hooks do not see) are not counted: the benchmark reuses connections.
type roundTrips struct{ sent atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.sent.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.sent.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkManagerRoundTrips: the Redis round trips of one refresh of a managed grant (token
// endpoint in memory), and of the first use of a grant the Manager does not hold; see
// storetest.BenchManager.
func BenchmarkManagerRoundTrips(b *testing.B) {
	s := testStore(b)
	h := &roundTrips{}
	s.Client.AddHook(h)
	storetest.BenchManager(b, s, h.sent.Load)
}
