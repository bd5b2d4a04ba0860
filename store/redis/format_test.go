package redisstore_test

import (
	"context"
	"testing"

	"github.com/tokenkit/oauth2refresh/internal/storetest"
	redisstore "github.com/tokenkit/oauth2refresh/store/redis"
)

// raw reaches the token key of a grant in s.
func raw(s *redisstore.Store) storetest.Raw {
	tokenKey := func(key string) string { return s.Prefix + "{k:" + key + "}:token" }
	return storetest.Raw{
		Get: func(ctx context.Context, key string) (string, error) {
			return s.Client.Get(ctx, tokenKey(key)).Result()
		},
		Put: func(ctx context.Context, key, value string) error {
			return s.Client.Set(ctx, tokenKey(key), value, 0).Err()
		},
		Location: tokenKey,
	}
}

func TestStoredFormat(t *testing.T) {
	s := testStore(t)
	storetest.StoredFormat(t, s, raw(s))
}

func TestCorrupt(t *testing.T) {
	s := testStore(t)
	storetest.Corrupt(t, s, raw(s))
}
