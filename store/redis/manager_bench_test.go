package redisstore_test

// BenchmarkManagerRoundTrips: the Redis round trips of a Manager over the Redis store (the
// counterpart of the core's BenchmarkManagerStoreRoundTrips, which counts FileStore calls),
// against the Redis server of the tests (see testClient). Run:
//
//	go test -run '^$' -bench ManagerRoundTrips -benchmem -count=1 .

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokenkit/oauth2refresh"
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

// roundTrips is a go-redis hook that counts what the client sends: each command, and each
// pipeline (its commands go in one write and come back together), is one round trip. A retry
// goes through the hook again, but testClient turns retries off. Dials (with their HELLO
// handshake, which the hooks do not see) are counted apart.
type roundTrips struct{ sent, dials atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

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

// countedStore returns testStore's Store (a key prefix of its own, deleted at the end), its
// client counting round trips.
func countedStore(b *testing.B) (oauth2refresh.Store, *roundTrips) {
	s := testStore(b)
	h := &roundTrips{}
	s.Client.AddHook(h)
	return s, h
}

// BenchmarkManagerRoundTrips: the Redis round trips of one refresh of a managed grant (token
// endpoint in memory), and of the first use of a grant the Manager does not hold.
func BenchmarkManagerRoundTrips(b *testing.B) {
	ctx := context.Background()
	b.Run("refresh", func(b *testing.B) {
		s, h := countedStore(b)
		clk := &benchClock{}
		clk.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
		m := oauth2refresh.NewManager(memEndpoint(), s,
			&oauth2refresh.ManagerOptions{Options: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)}})
		if err := m.Grant("g").Start(ctx, &oauth2.Token{RefreshToken: "refresh-token-1"}); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Grant("g").Token(); err != nil { // loads the scripts into Redis
			b.Fatal(err)
		}
		sent, dials := h.sent.Load(), h.dials.Load()
		for b.Loop() {
			clk.advance(2 * time.Hour)
			if _, err := m.Grant("g").Token(); err != nil {
				b.Fatal(err)
			}
		}
		n := float64(b.N)
		b.ReportMetric(float64(h.sent.Load()-sent)/n, "roundtrips/refresh")
		b.ReportMetric(float64(h.dials.Load()-dials)/n, "dials/refresh")
	})
	b.Run("first-use", func(b *testing.B) {
		s, h := countedStore(b)
		m := oauth2refresh.NewManager(memEndpoint(), s, &oauth2refresh.ManagerOptions{MaxGrants: 1})
		keys := []string{"g", "h"}
		for _, k := range keys {
			if err := m.Grant(k).Start(ctx, &oauth2.Token{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
		for _, k := range keys { // one use each first, as in the loop
			if _, err := m.Grant(k).Token(); err != nil {
				b.Fatal(err)
			}
		}
		sent, dials := h.sent.Load(), h.dials.Load()
		i := 0
		for b.Loop() { // MaxGrants 1: each call drops the other grant and makes this one
			if _, err := m.Grant(keys[i]).Token(); err != nil {
				b.Fatal(err)
			}
			i ^= 1
		}
		n := float64(b.N)
		b.ReportMetric(float64(h.sent.Load()-sent)/n, "roundtrips/use")
		b.ReportMetric(float64(h.dials.Load()-dials)/n, "dials/use")
	})
}
