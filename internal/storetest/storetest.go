// Package storetest checks that an oauth2refresh.Store keeps the promises of its interface:
// round trips, mutual exclusion, lease expiry and fencing. The FileStore of the core module
// and the Redis and PostgreSQL stores run it against real files and servers.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// Options say what a store can do.
type Options struct {
	// Expires is true for stores whose leases lapse after their ttl while the holder lives
	// (Redis, PostgreSQL); false for FileStore, whose lock lasts as long as its holder.
	Expires bool
	// Key returns a fresh key for one subtest, unused by anything else.
	Key func(t *testing.T) string
}

// Compare compares tokens by what a Store keeps (not Extra).
var Compare = cmpopts.IgnoreUnexported(oauth2.Token{})

// Run runs every check against s.
func Run(t *testing.T, s oauth2refresh.Store, o Options) {
	ctx := context.Background()
	tok := func(n int) *oauth2.Token {
		return (&oauth2.Token{
			AccessToken:  "at-" + strconv.Itoa(n),
			TokenType:    "Bearer",
			RefreshToken: "rt-" + strconv.Itoa(n),
			Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC),
			ExpiresIn:    3600,
		}).WithExtra(map[string]any{"id_token": "not kept"})
	}
	want := func(n int) *oauth2.Token { // tok(n) as it comes back: Extra dropped
		t := tok(n)
		return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType,
			RefreshToken: t.RefreshToken, Expiry: t.Expiry, ExpiresIn: t.ExpiresIn}
	}
	check := func(t *testing.T, what string, want, got *oauth2.Token) {
		t.Helper()
		if diff := cmp.Diff(want, got, Compare); diff != "" { // time.Time compares with Equal
			t.Errorf("%s: token mismatch (-want +got):\n%s", what, diff)
		}
	}

	t.Run("RoundTrip", func(t *testing.T) {
		key := o.Key(t)
		got, err := s.Load(ctx, key)
		if err != nil || got != nil {
			t.Fatalf("Load of a new key = %v, %v; want nil, nil", got, err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if l.Token() != nil {
			t.Errorf("Lease.Token of a new key = %v, want nil", l.Token())
		}
		if err := l.Save(ctx, tok(1)); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err = s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		check(t, "Load after Save", want(1), got)
		if got.Extra("id_token") != nil {
			t.Errorf("Extra was kept: %v", got.Extra("id_token"))
		}
		if err := l.Save(ctx, tok(2)); err != nil {
			t.Fatalf("second Save under one lease: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Errorf("second Release: %v", err)
		}
		if err := l.Save(ctx, tok(3)); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save after Release = %v, want ErrLeaseLost", err)
		}
		l, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		defer l.Release(ctx)
		check(t, "Lease.Token", want(2), l.Token())
	})

	t.Run("NoExpiry", func(t *testing.T) {
		key := o.Key(t)
		in := &oauth2.Token{AccessToken: "a", RefreshToken: "r"}
		if err := oauth2refresh.SaveToken(ctx, s, key, in, time.Minute); err != nil {
			t.Fatalf("SaveToken: %v", err)
		}
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		check(t, "Load", in, got)
	})

	t.Run("Exclusion", func(t *testing.T) {
		key, other := o.Key(t), o.Key(t)
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if l2, err := s.Lock(short, key, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				l2.Release(ctx)
			}
			t.Fatalf("Lock while held = %v, want an error wrapping context.DeadlineExceeded", err)
		}
		l3, err := s.Lock(ctx, other, time.Minute)
		if err != nil {
			t.Fatalf("Lock of another key while the first is held: %v", err)
		}
		l3.Release(ctx)
		l.Release(ctx)
		l, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after Release: %v", err)
		}
		l.Release(ctx)
	})

	t.Run("Counter", func(t *testing.T) {
		// Each goroutine reads the count under the lease and saves count+1: with mutual
		// exclusion no increment is lost.
		key := o.Key(t)
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					l, err := s.Lock(ctx, key, time.Minute)
					if err != nil {
						return err
					}
					defer l.Release(ctx)
					c := 0
					if cur := l.Token(); cur != nil {
						if c, err = strconv.Atoi(cur.AccessToken); err != nil {
							return err
						}
					}
					return l.Save(ctx, &oauth2.Token{AccessToken: strconv.Itoa(c + 1)})
				}()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.AccessToken != strconv.Itoa(n) {
			t.Errorf("count = %v, want %d", got, n)
		}
	})

	if !o.Expires {
		return
	}

	t.Run("LapsedLeaseIsFenced", func(t *testing.T) {
		key := o.Key(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok(1), time.Minute); err != nil {
			t.Fatal(err)
		}
		slow, err := s.Lock(ctx, key, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		// The holder "hangs": the next Lock gets the grant once the lease lapses.
		next, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after the lease lapsed: %v", err)
		}
		check(t, "next.Token", want(1), next.Token())
		if err := next.Save(ctx, tok(2)); err != nil {
			t.Fatal(err)
		}
		if err := slow.Save(ctx, tok(3)); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save by the lapsed holder = %v, want ErrLeaseLost", err)
		}
		if err := slow.Release(ctx); err != nil {
			t.Errorf("Release of a lapsed lease: %v", err)
		}
		// The lapsed holder's Release must not free the new holder's lease.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if l, err := s.Lock(short, key, time.Minute); err == nil {
			l.Release(ctx)
			t.Errorf("Lock succeeded while the new lease is held")
		}
		next.Release(ctx)
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "stored", want(2), got)
	})

	t.Run("LapsedLeaseNotRetaken", func(t *testing.T) {
		// A lease that lapsed without anyone taking the grant over may still save: the token
		// it holds is the newest, and dropping it would lose a rotated refresh token.
		key := o.Key(t)
		l, err := s.Lock(ctx, key, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		if err := l.Save(ctx, tok(1)); err != nil {
			t.Errorf("Save after the lease lapsed, not retaken: %v", err)
		}
		l.Release(ctx)
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "stored", want(1), got)
	})
}

// Keys returns a Key function giving keys unique to this run under prefix.
func Keys(prefix string) func(t *testing.T) string {
	var mu sync.Mutex
	n := 0
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	return func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%s%s/%s/%d", prefix, run, t.Name(), n)
	}
}
