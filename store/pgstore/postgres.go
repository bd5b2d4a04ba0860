// Package pgstore is an oauth2refresh.Store on PostgreSQL, for replicas of a service on several
// machines that share OAuth grants: with it, a grant is refreshed once per token lifetime
// whatever the number of replicas, and a rotated refresh token is never sent twice.
//
//	pool, err := pgxpool.New(ctx, "postgres://...")
//	store := &pgstore.Store{DB: pool}
//	if err := store.CreateTable(ctx); err != nil { ... } // or create it with your migrations
//	ts := endpoint.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
//
// Each grant is one row of a table (Store.Table; see CreateTable for its definition):
//
//	key            text primary key
//	token          text: the token, in the format of store.Encode, whose
//	               version is the fencing number of the lease that saved it; NULL while none
//	               is stored
//	fence          bigint: the fencing number of the last lease granted on the grant
//	lease_until    timestamptz: when the current lease lapses; NULL when released
//
// Every operation is one statement, atomic on its own, with no transaction held open while a
// token request is in flight. Lock is an INSERT ... ON CONFLICT DO UPDATE that succeeds only
// when no lease is live (by the database server's clock) and increments fence; a new row's
// fence is the database server's clock in microseconds since 1970. Save is an UPDATE guarded
// by "fence = the caller's": a holder whose lease lapsed may still save while nobody took over
// (its token holds the newest refresh token), but never overwrites the token of a later holder.
// Release clears lease_until under the same guard, and deletes the row instead when its token
// is NULL: a key that never held a token leaves no row. Waiting for a lease polls. Delete deletes the row, so that a lease held meanwhile cannot
// save; the grant started again numbers its leases from the clock, past every number given out
// before (unless the server's clock went back by more than the time the grant lived). A process
// that dies holding the lease of a grant never saved leaves its row, which the next Lock and
// Release of the key, or Delete, removes.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

// DefaultTable is the table used when Store.Table is empty.
const DefaultTable = "oauth2refresh_tokens"

// DB is what Store needs of a database handle; *pgxpool.Pool has it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is an oauth2refresh.Store that keeps tokens and leases in a PostgreSQL table. Its
// methods may be called by any number of goroutines if DB may (a *pgxpool.Pool may; a single
// *pgx.Conn may not).
type Store struct {
	// DB runs the statements, typically a *pgxpool.Pool. It must not be nil.
	DB DB

	// Table is the table's name, optionally schema-qualified ("auth.tokens"). Empty means
	// DefaultTable.
	Table string
}

var _ oauth2refresh.Store = (*Store)(nil)

// table returns the quoted table name.
func (s *Store) table() string {
	name := s.Table
	if name == "" {
		name = DefaultTable
	}
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// CreateTable creates the table if it does not exist:
//
//	CREATE TABLE IF NOT EXISTS oauth2refresh_tokens (
//		key         text PRIMARY KEY,
//		token       text,
//		fence       bigint NOT NULL DEFAULT 0,
//		lease_until timestamptz
//	)
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.DB.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table()+` (
	key         text PRIMARY KEY,
	token       text,
	fence       bigint NOT NULL DEFAULT 0,
	lease_until timestamptz
)`)
	if err != nil {
		return fmt.Errorf("oauth2refresh: postgres store: creating table: %w", err)
	}
	return nil
}

// decode decodes the token column of key's row: nil if no token is stored.
func (s *Store) decode(key string, v *string) (*oauth2.Token, error) {
	if v == nil {
		return nil, nil
	}
	location := "postgres table " + s.table()
	t, _, err := store.Decode(key, location, []byte(*v))
	return t, err
}

// Load returns the token stored under key, or nil if there is none.
func (s *Store) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	var v *string
	err := s.DB.QueryRow(ctx, `SELECT token FROM `+s.table()+` WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: postgres store: loading token: %w", err)
	}
	return s.decode(key, v)
}

// Delete deletes key's row; a lease held meanwhile can no longer save (see the package
// documentation). Deleting a key without a token is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.DB.Exec(ctx, `DELETE FROM `+s.table()+` WHERE key = $1`, key)
	if err != nil {
		return fmt.Errorf("oauth2refresh: postgres store: deleting token: %w", err)
	}
	return nil
}

// Lock waits until it holds key's lease, polling while another is live, or until ctx is done.
// ttl is rounded down to a microsecond, the database's precision.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	q := `INSERT INTO ` + s.table() + ` AS r (key, fence, lease_until)
	VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
		clock_timestamp() + $2::bigint * interval '1 microsecond')
	ON CONFLICT (key) DO UPDATE SET fence = r.fence + 1, lease_until = EXCLUDED.lease_until
	WHERE r.lease_until IS NULL OR r.lease_until <= clock_timestamp()
	RETURNING fence, token`
	us := max(ttl.Microseconds(), 1)
	wait := 2 * time.Millisecond
	for {
		var (
			fence int64
			v     *string
		)
		err := s.DB.QueryRow(ctx, q, key, us).Scan(&fence, &v)
		switch {
		case err == nil:
			l := &lease{s: s, key: key, fence: fence}
			if l.tok, err = s.decode(key, v); err != nil {
				l.Release(context.WithoutCancel(ctx))
				return nil, err
			}
			return l, nil
		case !errors.Is(err, pgx.ErrNoRows):
			if ctx.Err() != nil {
				return nil, fmt.Errorf("oauth2refresh: postgres store: waiting for lease: %w", ctx.Err())
			}
			return nil, fmt.Errorf("oauth2refresh: postgres store: taking lease: %w", err)
		}
		// Held by another: wait a little.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("oauth2refresh: postgres store: waiting for lease: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// lease is a lease on one grant.
type lease struct {
	s        *Store
	key      string
	fence    int64         // this lease's fencing number
	tok      *oauth2.Token // stored token when granted
	released bool
}

func (l *lease) Token() *oauth2.Token { return l.tok }

func (l *lease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.released {
		return fmt.Errorf("oauth2refresh: postgres store: save after release: %w", oauth2refresh.ErrLeaseLost)
	}
	b, err := store.Encode(t, uint64(l.fence))
	if err != nil {
		return err
	}
	tag, err := l.s.DB.Exec(ctx, `UPDATE `+l.s.table()+` SET token = $3 WHERE key = $1 AND fence = $2`,
		l.key, l.fence, string(b))
	if err != nil {
		return fmt.Errorf("oauth2refresh: postgres store: saving token: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("oauth2refresh: postgres store: a newer lease was granted: %w", oauth2refresh.ErrLeaseLost)
	}
	return nil
}

func (l *lease) Release(ctx context.Context) error {
	if l.released {
		return nil
	}
	// One statement: the row goes if it holds no token, else its lease is cleared.
	_, err := l.s.DB.Exec(ctx, `WITH gone AS (
	DELETE FROM `+l.s.table()+` WHERE key = $1 AND fence = $2 AND token IS NULL RETURNING key
)
UPDATE `+l.s.table()+` SET lease_until = NULL WHERE key = $1 AND fence = $2 AND NOT EXISTS (SELECT FROM gone)`, l.key, l.fence)
	if err != nil {
		return fmt.Errorf("oauth2refresh: postgres store: releasing lease: %w", err)
	}
	l.released = true
	return nil
}
