package pgstore_test

import (
	"context"
	"testing"

	"github.com/tokenkit/oauth2refresh/internal/storetest"
	pgstore "github.com/tokenkit/oauth2refresh/store/postgres"
)

// raw reaches the token column of s's table.
func raw(s *pgstore.Store) storetest.Raw {
	return storetest.Raw{
		Get: func(ctx context.Context, key string) (string, error) {
			var v string
			err := s.DB.QueryRow(ctx, `SELECT token FROM "`+s.Table+`" WHERE key = $1`, key).Scan(&v)
			return v, err
		},
		Put: func(ctx context.Context, key, value string) error {
			_, err := s.DB.Exec(ctx, `INSERT INTO "`+s.Table+`" (key, token) VALUES ($1, $2)`, key, value)
			return err
		},
		Location: func(string) string { return s.Table },
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
