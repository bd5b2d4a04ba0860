package oauth2refresh_test

// Benchmarks of the client_credentials grant against golang.org/x/oauth2/clientcredentials,
// side by side in one process, as bench_test.go does for the refresh grant.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// ccBench returns the Endpoint and the x/oauth2 Config of one client on rt, and the context
// that gives x/oauth2 rt.
func ccBench(rt http.RoundTripper) (*oauth2refresh.Endpoint, *clientcredentials.Config, context.Context) {
	cfg := &clientcredentials.Config{ClientID: "client", ClientSecret: "secret", TokenURL: benchTokenURL,
		AuthStyle: oauth2.AuthStyleInHeader, Scopes: []string{"api"}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
	e := benchEndpoint(rt)
	e.Scopes = cfg.Scopes
	return e, cfg, ctx
}

// sourceFunc is an oauth2.TokenSource made of a function.
type sourceFunc func() (*oauth2.Token, error)

func (f sourceFunc) Token() (*oauth2.Token, error) { return f() }

// BenchmarkClientCredentialsHotPath: many goroutines asking for the cached, valid token of
// the client.
func BenchmarkClientCredentialsHotPath(b *testing.B) {
	run := func(b *testing.B, src oauth2.TokenSource) {
		if _, err := src.Token(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if t, err := src.Token(); err != nil || t == nil {
					b.Fatal("no token", err)
				}
			}
		})
	}
	b.Run("oauth2refresh", func(b *testing.B) {
		e, _, _ := ccBench(&memTransport{status: 200, body: tokenBody})
		run(b, e.ClientCredentials(context.Background()))
	})
	b.Run("x-oauth2", func(b *testing.B) {
		_, cfg, ctx := ccBench(&memTransport{status: 200, body: tokenBody})
		run(b, cfg.TokenSource(ctx))
	})
}

// BenchmarkClientCredentialsWorstWait: the waits of callers while the client's tokens, which
// last a second, are replaced; see BenchmarkWorstWait. x/oauth2's cache gets the same 200 ms
// margin (its clientcredentials TokenSource has 10 s, more than the token's life).
func BenchmarkClientCredentialsWorstWait(b *testing.B) {
	b.Run("oauth2refresh", func(b *testing.B) {
		rt := &memTransport{status: 200, body: tokenOneSecond, delay: 100 * time.Millisecond}
		e, _, _ := ccBench(rt)
		benchWorstWait(b, e.ClientCredentials(context.Background(),
			oauth2refresh.ExpiryMargin(200*time.Millisecond), oauth2refresh.EarlyRefresh(400*time.Millisecond)), rt)
	})
	b.Run("x-oauth2", func(b *testing.B) {
		rt := &memTransport{status: 200, body: tokenOneSecond, delay: 100 * time.Millisecond}
		_, cfg, ctx := ccBench(rt)
		benchWorstWait(b, oauth2.ReuseTokenSourceWithExpiry(nil, sourceFunc(func() (*oauth2.Token, error) { return cfg.Token(ctx) }),
			200*time.Millisecond), rt)
	})
}

// BenchmarkClientCredentialsFailureStorm: 20 callers of a new source at once against a
// failing token endpoint; requests/op counts the token requests sent.
func BenchmarkClientCredentialsFailureStorm(b *testing.B) {
	b.Run("oauth2refresh", func(b *testing.B) {
		rt := &memTransport{status: 503, body: failing}
		e, _, _ := ccBench(rt)
		benchFailureStorm(b, rt, func() oauth2.TokenSource { return e.ClientCredentials(context.Background()) })
	})
	b.Run("x-oauth2", func(b *testing.B) {
		rt := &memTransport{status: 503, body: failing}
		_, cfg, ctx := ccBench(rt)
		benchFailureStorm(b, rt, func() oauth2.TokenSource { return cfg.TokenSource(ctx) })
	})
}

// BenchmarkClientCredentialsFleet: a fleet of processes (TokenSources, each with its own
// filestore.Store handle on one directory) × keys (clients), all asking for a token at once at each
// token lifetime, one lifetime an op; requests/lifetime/key counts the token requests. With
// WithStore the fleet sends one per key; without, as with x/oauth2, one per process.
func BenchmarkClientCredentialsFleet(b *testing.B) {
	const procs, keys = 20, 5
	run := func(b *testing.B, rt *issuer, get []func() error, next func()) {
		b.ReportAllocs()
		for b.Loop() {
			next()
			var wg sync.WaitGroup
			for _, g := range get {
				wg.Go(func() {
					if err := g(); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(rt.requests.Load())/float64(b.N)/keys, "requests/lifetime/key")
	}
	for _, shared := range []bool{true, false} {
		name := "oauth2refresh-store"
		if !shared {
			name = "oauth2refresh-no-store"
		}
		b.Run(name, func(b *testing.B) {
			rt := &issuer{}
			dir := b.TempDir()
			clock := newFakeClock()
			var get []func() error
			for k := range keys {
				e, _, _ := ccBench(rt)
				e.ClientID = fmt.Sprintf("client-%d", k)
				for range procs {
					opts := []oauth2refresh.Option{oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0)}
					if shared {
						opts = append(opts, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, e.ClientID))
					}
					ts := e.ClientCredentials(context.Background(), opts...)
					get = append(get, func() error { _, err := ts.Token(); return err })
				}
			}
			run(b, rt, get, func() { clock.advance(time.Hour) })
		})
	}
	b.Run("x-oauth2", func(b *testing.B) {
		// Each process's cache holds an expired token at each lifetime: a new source.
		rt := &issuer{}
		_, cfg, ctx := ccBench(rt)
		srcs := make([]oauth2.TokenSource, procs*keys)
		var get []func() error
		for i := range srcs {
			get = append(get, func() error { _, err := srcs[i].Token(); return err })
		}
		run(b, rt, get, func() {
			for i := range srcs {
				srcs[i] = cfg.TokenSource(ctx)
			}
		})
	})
}

// issuer is an in-memory token endpoint that issues a new access token, valid for an hour, at
// each request, and counts the requests.
type issuer struct{ requests atomic.Int64 }

func (s *issuer) RoundTrip(r *http.Request) (*http.Response, error) {
	n := s.requests.Add(1)
	r.Body.Close()
	return memResponse(r, 200, "application/json", fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n)), nil
}
