package redisstore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	redisstore "github.com/tokenkit/oauth2refresh/store/redisstore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
)

// testClient connects to the Redis server at OAUTH2REFRESH_REDIS_ADDR (default
// 127.0.0.1:6379, where .ci/services starts one). Without a server the test is skipped, unless
// CI is set: then it fails.
func testClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("OAUTH2REFRESH_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		msg := "no Redis server at " + addr + " (set OAUTH2REFRESH_REDIS_ADDR, or run `bash .ci/services`): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// testStore returns a Store under a prefix of its own, whose keys are deleted at the end.
func testStore(t testing.TB) *redisstore.Store {
	rdb := testClient(t)
	prefix := "oauth2refresh-test:" + strings.ReplaceAll(t.Name(), "/", "_") + ":" + time.Now().Format("150405.000000000") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return &redisstore.Store{Client: rdb, Prefix: prefix}
}

func TestStore(t *testing.T) {
	s := testStore(t)
	storetest.TestStore(t, s, storetest.Options{LeasesExpire: true, Raw: raw(s), Contents: contents(s)})
}

// contents lists the Redis keys under s's prefix, for storetest.Options.Contents.
func contents(s *redisstore.Store) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		var keys []string
		iter := s.Client.Scan(ctx, 0, s.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
}

func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A port nothing listens on: 1 is reserved and closed on loopback.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	s := &redisstore.Store{Client: rdb}
	if _, err := s.Load(ctx, "k"); err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: redis store: ") {
		t.Errorf("Load = %v, want an oauth2refresh: redis store: error", err)
	}
	if _, err := s.Lock(ctx, "k", time.Minute); err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: redis store: ") {
		t.Errorf("Lock = %v, want an oauth2refresh: redis store: error", err)
	}
}

// raw reaches the token key of a grant in s.
func raw(s *redisstore.Store) *storetest.Raw {
	tokenKey := func(key string) string { return s.Prefix + "{k:" + key + "}:token" }
	return &storetest.Raw{
		Get: func(ctx context.Context, key string) (string, error) {
			return s.Client.Get(ctx, tokenKey(key)).Result()
		},
		Put: func(ctx context.Context, key, value string) error {
			return s.Client.Set(ctx, tokenKey(key), value, 0).Err()
		},
		Location: tokenKey,
	}
}
