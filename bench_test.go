package oauth2refresh_test

// Benchmarks against golang.org/x/oauth2, side by side in one process. Each benchmark has a
// sub-benchmark per library: "oauth2refresh" and "x-oauth2". To print them as a table with
// ratios, run from the module root:
//
//	go run ./internal/benchtable
//
// which runs `go test -run '^$' -bench . -benchmem .` and formats its output (about a
// minute on 2 cores). Plain `go test -bench . -benchmem` shows the raw numbers.

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

const benchTokenURL = "https://token.example/oauth2/token"

var tokenBody = []byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.access","token_type":"Bearer","expires_in":3600,` +
	`"refresh_token":"refresh-token-2","scope":"openid email","id_token":"eyJhbGciOiJSUzI1NiJ9.id"}`)

func benchEndpoint(rt http.RoundTripper) *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{
		TokenURL:     benchTokenURL,
		ClientID:     "client",
		ClientSecret: "secret",
		HTTPClient:   &http.Client{Transport: rt},
	}
}

func benchConfig() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		Endpoint:     oauth2.Endpoint{TokenURL: benchTokenURL, AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// staticSource hands out one token.
type staticSource struct{ t *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error) { return s.t, nil }

// BenchmarkHotPath: many goroutines asking for a cached, valid token.
func BenchmarkHotPath(b *testing.B) {
	tok := &oauth2.Token{AccessToken: "access", TokenType: "Bearer", RefreshToken: "refresh", Expiry: time.Now().Add(time.Hour)}
	run := func(b *testing.B, src oauth2.TokenSource) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if t, err := src.Token(); err != nil || t == nil {
					b.Fatal("no token", err)
				}
			}
		})
	}
	b.Run("oauth2refresh", func(b *testing.B) {
		run(b, benchEndpoint(&memTransport{}).TokenSource(context.Background(), tok))
	})
	b.Run("oauth2refresh-events", func(b *testing.B) {
		// With WithEvents set, that the hot path never calls.
		var n atomic.Int64
		run(b, benchEndpoint(&memTransport{}).TokenSource(context.Background(), tok,
			oauth2refresh.WithEvents(func(events.Event) { n.Add(1) })))
	})
	b.Run("x-oauth2", func(b *testing.B) {
		run(b, oauth2.ReuseTokenSource(tok, staticSource{tok}))
	})
}

// BenchmarkClock measures what bounds BenchmarkHotPath: the clock reads alone, in parallel
// like it. The TokenSource reads the monotonic clock (time.Since); a Token's Valid, which
// oauth2.ReuseTokenSource calls under its mutex, reads time.Now.
func BenchmarkClock(b *testing.B) {
	base := time.Now()
	var sink atomic.Int64
	b.Run("time.Since", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var n int64
			for pb.Next() {
				n += int64(time.Since(base))
			}
			sink.Add(n)
		})
	})
	b.Run("time.Now", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var n int64
			for pb.Next() {
				n += time.Now().UnixNano()
			}
			sink.Add(n)
		})
	})
}

// BenchmarkRefresh: the client-side cost of one refresh through an in-memory transport, from
// a new TokenSource holding an expired token, as oauth2.Config.TokenSource(ctx, t).Token()
// does it. The Endpoint.Refresh row is the grant alone, without a TokenSource.
func BenchmarkRefresh(b *testing.B) {
	expired := &oauth2.Token{AccessToken: "old", RefreshToken: "refresh-token-1", Expiry: time.Now().Add(-time.Hour)}
	check := func(b *testing.B, t *oauth2.Token, err error) {
		if err != nil || t.AccessToken != "eyJhbGciOiJSUzI1NiJ9.access" || t.Extra("id_token") == nil {
			b.Fatalf("refresh = %v, %v", t, err)
		}
	}
	b.Run("oauth2refresh", func(b *testing.B) {
		ep := benchEndpoint(&memTransport{status: 200, body: tokenBody})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			t, err := ep.TokenSource(ctx, expired).Token()
			check(b, t, err)
		}
	})
	b.Run("oauth2refresh-Endpoint.Refresh", func(b *testing.B) {
		ep := benchEndpoint(&memTransport{status: 200, body: tokenBody})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			t, err := ep.Refresh(ctx, expired.RefreshToken)
			check(b, t, err)
		}
	})
	b.Run("x-oauth2", func(b *testing.B) {
		cfg := benchConfig()
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient,
			&http.Client{Transport: &memTransport{status: 200, body: tokenBody}})
		b.ReportAllocs()
		for b.Loop() {
			t, err := cfg.TokenSource(ctx, expired).Token()
			check(b, t, err)
		}
	})
}

// BenchmarkWorstWait: 16 goroutines each ask for a token about every millisecond, like a
// busy service, while tokens that live 1 s come from an endpoint that takes 100 ms to answer.
// Each op is 1.2 s of this, across at least one refresh; the metric worst-ms is the longest
// any single call took. oauth2refresh refreshes in the background from 400 ms on
// (EarlyRefresh), x/oauth2 when the token is 200 ms from expiry (ReuseTokenSourceWithExpiry),
// and both stop serving a token 200 ms before its expiry.
func BenchmarkWorstWait(b *testing.B) {
	run := benchWorstWait
	b.Run("oauth2refresh", func(b *testing.B) {
		rt := &memTransport{status: 200, body: tokenOneSecond, delay: 100 * time.Millisecond}
		src := benchEndpoint(rt).TokenSource(context.Background(), &oauth2.Token{RefreshToken: "r"},
			oauth2refresh.ExpiryMargin(200*time.Millisecond), oauth2refresh.EarlyRefresh(400*time.Millisecond))
		run(b, src, rt)
	})
	b.Run("x-oauth2", func(b *testing.B) {
		rt := &memTransport{status: 200, body: tokenOneSecond, delay: 100 * time.Millisecond}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
		src := oauth2.ReuseTokenSourceWithExpiry(nil, benchConfig().TokenSource(ctx, &oauth2.Token{RefreshToken: "r"}), 200*time.Millisecond)
		run(b, src, rt)
	})
}

// tokenOneSecond is tokenBody with a token that lasts one second.
var tokenOneSecond = bytes.Replace(tokenBody, []byte(`"expires_in":3600`), []byte(`"expires_in":1`), 1)

// benchWorstWait measures the waits of 16 goroutines asking src for a token every
// millisecond, for 1.2 s per op, while its tokens (from rt) last a second.
func benchWorstWait(b *testing.B, src oauth2.TokenSource, rt *memTransport) {
	if _, err := src.Token(); err != nil { // the first token, outside the measure
		b.Fatal(err)
	}
	var (
		mu    sync.Mutex // guards worst and waits
		worst time.Duration
		waits []time.Duration
	)
	start := rt.requests.Load()
	b.ResetTimer()
	deadline := time.Now().Add(time.Duration(b.N) * 1200 * time.Millisecond)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				_, err := src.Token()
				d := time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, d)
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			waits = append(waits, mine...)
			for _, d := range mine {
				worst = max(worst, d)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(waits)
	b.ReportMetric(float64(worst)/float64(time.Millisecond), "worst-ms")
	if len(waits) > 0 {
		b.ReportMetric(float64(waits[len(waits)*999/1000])/float64(time.Millisecond), "p99.9-ms")
	}
	b.ReportMetric(float64(rt.requests.Load()-start)/float64(b.N), "refreshes/op")
}

// BenchmarkFailureStorm: 20 goroutines ask a new source for a token at once while the
// endpoint answers 503; the metric requests/op counts the token requests sent.
func BenchmarkFailureStorm(b *testing.B) {
	expired := &oauth2.Token{AccessToken: "old", RefreshToken: "refresh-token-1", Expiry: time.Now().Add(-time.Hour)}
	run := benchFailureStorm
	b.Run("oauth2refresh", func(b *testing.B) {
		rt := &memTransport{status: 503, body: failing}
		ep := benchEndpoint(rt)
		run(b, rt, func() oauth2.TokenSource { return ep.TokenSource(context.Background(), expired) })
	})
	b.Run("x-oauth2", func(b *testing.B) {
		rt := &memTransport{status: 503, body: failing}
		cfg := benchConfig()
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
		run(b, rt, func() oauth2.TokenSource { return cfg.TokenSource(ctx, expired) })
	})
}

// failing is the answer of a token endpoint that is down.
var failing = []byte(`{"error":"temporarily_unavailable"}`)

// benchFailureStorm makes 20 goroutines ask a new source for a token at once, per op, while
// rt fails; the metric requests/op counts the token requests sent.
func benchFailureStorm(b *testing.B, rt *memTransport, newSource func() oauth2.TokenSource) {
	b.ReportAllocs()
	for b.Loop() {
		src := newSource()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Go(func() {
				<-start
				if _, err := src.Token(); err == nil {
					b.Error("Token() succeeded against a failing endpoint")
				}
			})
		}
		close(start)
		wg.Wait()
	}
	b.ReportMetric(float64(rt.requests.Load())/float64(b.N), "requests/op")
}
