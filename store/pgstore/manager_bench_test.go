package pgstore_test

// BenchmarkManagerRoundTrips: the PostgreSQL round trips of a Manager over the PostgreSQL
// store (the counterpart of the core's BenchmarkManagerStoreRoundTrips, which counts filestore.Store
// calls), against the PostgreSQL server of the tests (see testPool). Run:
//
//	go test -run '^$' -bench ManagerRoundTrips -benchmem -count=1 .

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	pgstore "github.com/tokenkit/oauth2refresh/store/pgstore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
)

// roundTrips counts the round trips a pool makes to the server, on the wire (a write after a
// read, or a connection's first write, starts one): statements, and what pgx sends besides
// them (statement preparation, pings, the connection handshake).
type roundTrips struct{ trips atomic.Int64 }

// wireConn is a connection to the server whose round trips roundTrips counts.
type wireConn struct {
	net.Conn
	c *roundTrips

	mu      sync.Mutex // guards writing
	writing bool       // written since the last read
}

func (w *wireConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.writing {
		w.writing = true
		w.c.trips.Add(1)
	}
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *wireConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.mu.Lock()
		w.writing = false
		w.mu.Unlock()
	}
	return n, err
}

// countedStore returns a Store on a table of its own, dropped at the end, whose pool (made
// like testPool's, with its settings) counts round trips. The table's name is short, so that
// PostgreSQL does not cut it to 63 bytes, and unique per process and run.
func countedStore(b *testing.B) (*pgstore.Store, *roundTrips) {
	ctx := context.Background()
	base := testPool(b)
	table := fmt.Sprintf("oauth2refresh_rt_%d_%d", os.Getpid(), time.Now().UnixNano())
	if err := (&pgstore.Store{DB: base, Table: table}).CreateTable(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { base.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`) })

	c := &roundTrips{}
	cfg := base.Config()
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &wireConn{Conn: conn, c: c}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // before the DROP: cleanups run last first
	return &pgstore.Store{DB: pool, Table: table}, c
}

// BenchmarkManagerRoundTrips: the PostgreSQL round trips of one refresh of a managed grant
// (token endpoint in memory), and of the first use of a grant the Manager does not hold; see
// storetest.BenchManager.
func BenchmarkManagerRoundTrips(b *testing.B) {
	s, c := countedStore(b)
	storetest.BenchManager(b, s, c.trips.Load)
}
