package pgstore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgstore "github.com/tokenkit/oauth2refresh/store/pgstore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
)

const defaultDSN = "postgres://oauth2refresh:oauth2refresh@127.0.0.1:5432/oauth2refresh?sslmode=disable"

// testPool connects to the PostgreSQL server at OAUTH2REFRESH_POSTGRES_DSN (default: the role
// and database that .ci/services creates on 127.0.0.1:5432). Without a server the test is
// skipped, unless CI is set: then it fails.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := os.Getenv("OAUTH2REFRESH_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		msg := "no PostgreSQL server (set OAUTH2REFRESH_POSTGRES_DSN, or run `bash .ci/services`): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testStore returns a Store on a table of its own, dropped at the end.
func testStore(t testing.TB) *pgstore.Store {
	pool := testPool(t)
	table := "oauth2refresh_test_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())) +
		"_" + time.Now().Format("150405000000")
	s := &pgstore.Store{DB: pool, Table: table}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`) })
	return s
}

func TestStore(t *testing.T) {
	s := testStore(t)
	storetest.TestStore(t, s, storetest.Options{LeasesExpire: true, Raw: raw(s), Contents: contents(s)})
}

// contents lists the keys of the rows of s's table, for storetest.Options.Contents.
func contents(s *pgstore.Store) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		rows, err := s.DB.(*pgxpool.Pool).Query(ctx, `SELECT key FROM "`+s.Table+`"`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
}

func TestCreateTableTwice(t *testing.T) {
	s := testStore(t)
	if err := s.CreateTable(context.Background()); err != nil {
		t.Errorf("second CreateTable: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://u:p@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := &pgstore.Store{DB: pool}
	if _, err := s.Load(ctx, "k"); err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: postgres store: ") {
		t.Errorf("Load = %v, want an oauth2refresh: postgres store: error", err)
	}
	if _, err := s.Lock(ctx, "k", time.Minute); err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: postgres store: ") {
		t.Errorf("Lock = %v, want an oauth2refresh: postgres store: error", err)
	}
}

// raw reaches the token column of s's table.
func raw(s *pgstore.Store) *storetest.Raw {
	return &storetest.Raw{
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
