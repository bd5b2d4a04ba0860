package pgstore_test

// BenchmarkManagerRoundTrips: the PostgreSQL round trips of a Manager over the PostgreSQL
// store (the counterpart of the core's BenchmarkManagerStoreRoundTrips, which counts FileStore
// calls), against the PostgreSQL server of the tests (see testPool). Run:
//
//	go test -run '^$' -bench ManagerRoundTrips -benchmem -count=1 .

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenkit/oauth2refresh"
	pgstore "github.com/tokenkit/oauth2refresh/store/postgres"
	"golang.org/x/oauth2"
)

// memTokenBody is the in-memory token endpoint's answer: a token valid for an hour.
const memTokenBody = `{"access_token":"eyJhbGciOiJSUzI1NiJ9.access","token_type":"Bearer","expires_in":3600,` +
	`"refresh_token":"refresh-token-2","scope":"openid email"}`

// memTransport is the token endpoint in memory (no network): every request gets memTokenBody.
type memTransport struct{}

func (memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(memTokenBody)),
		Body: io.NopCloser(strings.NewReader(memTokenBody)), Request: r,
	}, nil
}

func memEndpoint() *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: "client", ClientSecret: "secret",
		HTTPClient: &http.Client{Transport: memTransport{}}}
}

// benchClock is a clock that moves only when told to, for oauth2refresh.WithClock.
type benchClock struct{ ns atomic.Int64 }

func (c *benchClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *benchClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// roundTrips counts what a pool sends to the server: the statements pgx runs (a
// pgx.QueryTracer: Exec, Query, QueryRow, and so Begin and Commit), and, on the wire, the round
// trips (a write after a read, or a connection's first write, starts one), which also sees
// what the tracer does not: statement preparation, pings, the connection handshake.
type roundTrips struct{ statements, trips, dials atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	return ctx
}

func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

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
	cfg.ConnConfig.Tracer = c
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.dials.Add(1)
		return &wireConn{Conn: conn, c: c}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // before the DROP: cleanups run last first
	return &pgstore.Store{DB: pool, Table: table}, c
}

// counts is a snapshot of a roundTrips.
type counts struct{ statements, trips, dials int64 }

func (c *roundTrips) snapshot() counts {
	return counts{c.statements.Load(), c.trips.Load(), c.dials.Load()}
}

// report reports the counts made since before, per iteration, per what ("refresh", "use").
func (c *roundTrips) report(b *testing.B, before counts, what string) {
	now, n := c.snapshot(), float64(b.N)
	b.ReportMetric(float64(now.trips-before.trips)/n, "roundtrips/"+what)
	b.ReportMetric(float64(now.statements-before.statements)/n, "statements/"+what)
	b.ReportMetric(float64(now.dials-before.dials)/n, "dials/"+what)
}

// BenchmarkManagerRoundTrips: the PostgreSQL round trips of one refresh of a managed grant
// (token endpoint in memory), and of the first use of a grant the Manager does not hold.
func BenchmarkManagerRoundTrips(b *testing.B) {
	ctx := context.Background()
	b.Run("refresh", func(b *testing.B) {
		s, c := countedStore(b)
		clk := &benchClock{}
		clk.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
		m := oauth2refresh.NewManager(memEndpoint(), s,
			&oauth2refresh.ManagerOptions{Options: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)}})
		if err := m.Grant("g").Start(ctx, &oauth2.Token{RefreshToken: "refresh-token-1"}); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Grant("g").Token(); err != nil { // prepares the statements
			b.Fatal(err)
		}
		before := c.snapshot()
		for b.Loop() {
			clk.advance(2 * time.Hour)
			if _, err := m.Grant("g").Token(); err != nil {
				b.Fatal(err)
			}
		}
		c.report(b, before, "refresh")
	})
	b.Run("first-use", func(b *testing.B) {
		s, c := countedStore(b)
		m := oauth2refresh.NewManager(memEndpoint(), s, &oauth2refresh.ManagerOptions{MaxGrants: 1})
		keys := []string{"g", "h"}
		for _, k := range keys {
			if err := m.Grant(k).Start(ctx, &oauth2.Token{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
		for _, k := range keys { // one use each first, as in the loop (the pool prepares the SELECT)
			if _, err := m.Grant(k).Token(); err != nil {
				b.Fatal(err)
			}
		}
		before := c.snapshot()
		i := 0
		for b.Loop() { // MaxGrants 1: each call drops the other grant and makes this one
			if _, err := m.Grant(keys[i]).Token(); err != nil {
				b.Fatal(err)
			}
			i ^= 1
		}
		c.report(b, before, "use")
	})
}
