package redisstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/storetest"
	redisstore "github.com/tokenkit/oauth2refresh/store/redis"
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
	storetest.Run(t, testStore(t), storetest.Options{Expires: true, Key: storetest.Keys("")})
}

func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	const secret = "SECRET-refresh-token"
	full := `{"version":1,"access_token":"at","refresh_token":"` + secret + `"}`
	tests := []struct{ name, value string }{
		{"empty", ""},
		{"truncated", full[:len(full)-8]},
		{"garbage", "\x00" + secret},
		{"no token", `{"version":1,"token_type":"Bearer"}`},
		{"no version", `{"access_token":"at","refresh_token":"` + secret + `"}`},
		{"wrong shape", `["` + secret + `"]`},
		{"trailing data", full + full},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "corrupt-" + tc.name
			tk := s.Prefix + "{k:" + key + "}:token"
			if err := s.Client.Set(ctx, tk, tc.value, 0).Err(); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *oauth2refresh.CorruptTokenError
				if !errors.As(err, &ce) || ce.Key != key {
					t.Fatalf("%s = %v, want a *CorruptTokenError for %q", what, err, key)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error quotes the value: %v", what, err)
				}
			}
			_, err := s.Load(ctx, key)
			check("Load", err)
			_, err = s.Lock(ctx, key, time.Minute)
			check("Lock", err)
			// The failed Lock released its lease.
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := s.Lock(short, key, time.Minute); errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the failed Lock kept its lease")
			}
			if v, _ := s.Client.Get(ctx, tk).Result(); v != tc.value {
				t.Errorf("value changed to %q", v)
			}
		})
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
