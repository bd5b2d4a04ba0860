package storetest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// lifetime is the access-token lifetime step of the benchmarks' token endpoint.
const lifetime = time.Hour

// memEndpoint is a token endpoint in memory (an http.RoundTripper, no network). Its tokens
// say expires_in one hour (lifetime); the TokenSource stamps their Expiry with its clock.
type memEndpoint struct {
	requests atomic.Int64
}

func (m *memEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	n := m.requests.Add(1)
	body := fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":%d,"refresh_token":"rt-%d"}`,
		n, int64(lifetime/time.Second), n)
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    r,
	}, nil
}

func (m *memEndpoint) endpoint() *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: "app", ClientSecret: "s3cret",
		HTTPClient: &http.Client{Transport: m}}
}

// The benchmarks' TokenSources refresh when a test clock (oauth2refresh.WithClock) moves past
// their token's expiry, and ask a token endpoint in memory.

// benchClock is a clock moved by the benchmark, one token lifetime at a time.
type benchClock struct{ ns atomic.Int64 }

func newBenchClock() *benchClock {
	c := &benchClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *benchClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// next moves the clock one token lifetime on: every token received before has expired.
func (c *benchClock) next() { c.ns.Add(int64(lifetime)) }

// seed stores a first token (refresh token only) under key, unless s is nil.
func seed(b *testing.B, s oauth2refresh.Store, key string) {
	b.Helper()
	if s == nil {
		return
	}
	if err := oauth2refresh.SaveToken(context.Background(), s, key, &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		b.Fatal(err)
	}
}

func newSource(m *memEndpoint, s oauth2refresh.Store, key string, opts ...oauth2refresh.Option) *oauth2refresh.TokenSource {
	var first *oauth2.Token
	if s == nil {
		first = &oauth2.Token{RefreshToken: "rt-0"}
	} else {
		opts = append(opts, oauth2refresh.WithStore(s, key))
	}
	return m.endpoint().TokenSource(context.Background(), first, opts...)
}

// BenchHotPath measures Token on a cached, valid token, from parallel goroutines, of a
// TokenSource sharing key's grant through s (nil: no store, for comparison). A store is
// consulted only when a token must be refreshed, so it should add nothing.
func BenchHotPath(b *testing.B, s oauth2refresh.Store, key string) {
	m := &memEndpoint{}
	seed(b, s, key)
	ts := newSource(m, s, key)
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Token(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchRefresh measures one refresh of an expired token through s (nil: no store): the load,
// lease, save and release around a request to a token endpoint in memory.
func BenchRefresh(b *testing.B, s oauth2refresh.Store, key string) {
	m := &memEndpoint{}
	seed(b, s, key)
	clock := newBenchClock()
	ts := newSource(m, s, key, oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0))
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clock.next()
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := m.requests.Load(); got != int64(b.N)+1 {
		b.Fatalf("%d token requests for %d refreshes", got, b.N+1)
	}
}

// BenchPickUp measures how long a TokenSource takes to pick up a token that another one
// (another process) refreshed and saved in s under key: a load, no lease, no token request.
func BenchPickUp(b *testing.B, s oauth2refresh.Store, key string) {
	m := &memEndpoint{}
	seed(b, s, key)
	clock := newBenchClock()
	opts := []oauth2refresh.Option{oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0)}
	refresher, reader := newSource(m, s, key, opts...), newSource(m, s, key, opts...)
	if _, err := refresher.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clock.next()
		want, err := refresher.Token()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := reader.Token()
		if err != nil {
			b.Fatal(err)
		}
		if got.AccessToken != want.AccessToken {
			b.Fatalf("picked up %q, want %q", got.AccessToken, want.AccessToken)
		}
	}
	b.StopTimer()
	if got := m.requests.Load(); got != int64(b.N)+1 {
		b.Fatalf("%d token requests for %d refreshes", got, b.N+1)
	}
}

// BenchRefreshesPerLifetime runs `sources` TokenSources (as `sources` processes would, each
// with its own memory) of `goroutines` callers each on key's grant in s (nil: no store). Each
// iteration is one access token lifetime: the clock moves past the token's expiry and every
// caller asks for a token. It reports the token requests per lifetime ("refreshes/lifetime"):
// 1 with a store that shares the grant, `sources` without one.
func BenchRefreshesPerLifetime(b *testing.B, s oauth2refresh.Store, key string, sources, goroutines int) {
	m := &memEndpoint{}
	seed(b, s, key)
	clock := newBenchClock()
	var tss []*oauth2refresh.TokenSource
	for range sources {
		tss = append(tss, newSource(m, s, key, oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0)))
	}
	b.ResetTimer()
	for range b.N {
		clock.next()
		var wg sync.WaitGroup
		for _, ts := range tss {
			for range goroutines {
				wg.Go(func() {
					if _, err := ts.Token(); err != nil {
						b.Error(err)
					}
				})
			}
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(m.requests.Load())/float64(b.N), "refreshes/lifetime")
	b.ReportMetric(0, "ns/op")
}

// BenchManager measures an oauth2refresh.Manager over s, with a token endpoint in memory:
// "refresh", one refresh of a managed grant, and "first-use", the first use of a grant the
// Manager had dropped (MaxGrants 1, two grants used in turn, their tokens valid). roundTrips,
// if not nil, returns how many round trips the store's client has made so far (a driver hook's
// count); their number per iteration is reported as "roundtrips/refresh" and "roundtrips/use".
// Each is counted after one warm-up call, which prepares statements or loads scripts.
func BenchManager(b *testing.B, s oauth2refresh.Store, roundTrips func() int64) {
	ctx := context.Background()
	report := func(b *testing.B, before int64, what string) {
		if roundTrips != nil {
			b.ReportMetric(float64(roundTrips()-before)/float64(b.N), "roundtrips/"+what)
		}
	}
	count := func() int64 {
		if roundTrips == nil {
			return 0
		}
		return roundTrips()
	}
	b.Run("refresh", func(b *testing.B) {
		m := &memEndpoint{}
		clock := newBenchClock()
		mgr := oauth2refresh.NewManager(m.endpoint(), s,
			&oauth2refresh.ManagerOptions{SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clock.now)}})
		g := mgr.Grant("manager-refresh")
		if err := g.SaveToken(ctx, &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
			b.Fatal(err)
		}
		if _, err := g.Token(); err != nil {
			b.Fatal(err)
		}
		before := count()
		b.ReportAllocs()
		for b.Loop() {
			clock.next()
			if _, err := g.Token(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, before, "refresh")
	})
	b.Run("first-use", func(b *testing.B) {
		m := &memEndpoint{}
		mgr := oauth2refresh.NewManager(m.endpoint(), s, &oauth2refresh.ManagerOptions{MaxGrants: 1})
		grants := []oauth2refresh.Grant{mgr.Grant("manager-use-a"), mgr.Grant("manager-use-b")}
		for _, g := range grants {
			t := &oauth2.Token{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(lifetime)}
			if err := g.SaveToken(ctx, t); err != nil {
				b.Fatal(err)
			}
			if _, err := g.Token(); err != nil {
				b.Fatal(err)
			}
		}
		before := count()
		b.ReportAllocs()
		i := 0
		for b.Loop() { // MaxGrants 1: each call drops the other grant and makes this one
			if _, err := grants[i].Token(); err != nil {
				b.Fatal(err)
			}
			i ^= 1
		}
		b.StopTimer()
		if n := m.requests.Load(); n != 0 {
			b.Fatalf("%d token requests, want none", n)
		}
		report(b, before, "use")
	})
}
