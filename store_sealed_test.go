package oauth2refresh_test

// The TokenSource through a sealed store (store.Seal); the store package's tests check Seal
// itself.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/sealtest"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// Test keys, 32 bytes each, and sealers of them: see sealtest.
var (
	key1, key2 = sealtest.Key1, sealtest.Key2
	newSealer  = sealtest.NewSealer
)

// A TokenSource sharing a grant through a sealed store refreshes, and a restarted one picks the
// sealed token up without a request; one whose stored token does not open sends nothing.
func TestSealStoreWithStore(t *testing.T) {
	ctx := context.Background()
	srv := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	inner := &filestore.Store{Dir: t.TempDir()}
	s := store.Seal(inner, newSealer(t, map[string][]byte{"k1": key1}, "k1"))
	if err := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	src := srv.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(s, "g"), oauth2refresh.WithClock(clock.now))
	for i, want := range []string{"at-1", "at-2"} {
		tok, err := src.Token()
		if err != nil || tok.AccessToken != want {
			t.Fatalf("token %d = %v, %v; want %s", i+1, tok, err, want)
		}
		clock.advance(2 * time.Hour)
	}
	clock.advance(-2 * time.Hour)
	restarted := srv.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(s, "g"), oauth2refresh.WithClock(clock.now))
	tok, err := restarted.Token()
	if err != nil || tok.AccessToken != "at-2" || tok.Extra("id_token") != "id-2" {
		t.Fatalf("restarted = %v, %v; want at-2 with id-2", tok, err)
	}
	if n := srv.requests.Load(); n != 2 || srv.isRevoked() {
		t.Errorf("server saw %d requests (revoked %v), want 2", n, srv.isRevoked())
	}
	raw, err := inner.Load(ctx, "g")
	if err != nil || raw.RefreshToken == "rt-2" || !strings.HasPrefix(raw.RefreshToken, "sealed.v1.k1.") {
		t.Errorf("stored refresh token %.16q, %v; want it sealed", raw.RefreshToken, err)
	}

	other := store.Seal(inner, newSealer(t, map[string][]byte{"k9": key2}, "k9"))
	clock.advance(2 * time.Hour)
	lost := srv.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(other, "g"), oauth2refresh.WithClock(clock.now))
	if _, err := lost.Token(); !errors.Is(err, store.ErrUnknownSealKey) {
		t.Errorf("Token with the key unknown = %v, want ErrUnknownSealKey", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2: nothing sent for a token that does not open", n)
	}
}

func TestSealStoreDeadMarkAndDelete(t *testing.T) {
	// A dead mark is sealed like a token, so that a store writer cannot forge one (a clear
	// one is refused: see sealtest.Attacks), and read back as a mark, which a TokenSource
	// reports without sending anything. Seal passes Delete on.
	ctx := context.Background()
	dir := t.TempDir()
	inner := &filestore.Store{Dir: dir}
	k := newSealer(t, map[string][]byte{"k1": key1}, "k1")
	s := store.Seal(inner, k)
	if err := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{AccessToken: "at-secret", RefreshToken: "rt-secret"}); err != nil {
		t.Fatal(err)
	}
	if err := oauth2refresh.SaveToken(ctx, s, "g", deadMarkOf(t, oauth2refresh.ReasonRevoked)); err != nil {
		t.Fatal(err)
	}
	if f := readGrantFile(t, dir); !strings.HasPrefix(f, `{"version":2,"refresh_token":"sealed.v1.k1.`) || strings.Contains(f, "revoked") {
		t.Errorf("stored file = %s, want the dead mark sealed", f)
	}
	mt := &memTransport{status: 500}
	_, err := memEndpoint(mt).TokenSource(ctx, nil, oauth2refresh.WithStore(s, "g")).Token()
	if diff := cmp.Diff(deadView{Key: "g", Reason: oauth2refresh.ReasonRevoked, At: clockStart}, asDead(t, err)); diff != "" {
		t.Errorf("DeadGrantError (-want +got):\n%s", diff)
	}
	if !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
		t.Errorf("errors.Is(%v, ErrGrantRevoked) = false", err)
	}
	if n := mt.requests.Load(); n != 0 {
		t.Errorf("token requests = %d, want 0", n)
	}

	if err := s.Delete(ctx, "g"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := readGrantFile(t, dir); got != "" {
		t.Errorf("stored file after Delete = %s, want none", got)
	}
}

// A grant sealed by the previous release is refreshed at its first use, even with an expiry
// edited far off, and saved sealed whole; no grant is lost in the upgrade.
func TestSealStorePreviousLayoutUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := sealtest.PreviousLayout(t, func(m map[string]any) {
		delete(m, "dpop_jkt") // the test's Endpoint has no DPoP key
		m["expiry"] = "2099-01-01T00:00:00Z"
	})
	if err := os.WriteFile(filepath.Join(dir, "g.json"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newTokenServer(t, "rt-secret", 3600)
	clock := newFakeClock()
	s := store.Seal(&filestore.Store{Dir: dir}, newSealer(t, map[string][]byte{"k1": key1}, "k1"))
	tok, err := srv.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(s, "g"), oauth2refresh.WithClock(clock.now)).Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1, refreshed with the sealed refresh token", tok, err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	f := readGrantFile(t, dir)
	if !strings.HasPrefix(f, `{"version":2,"refresh_token":"sealed.v1.k1.`) || strings.Contains(f, "expiry") || strings.Contains(f, "oauth2refresh_sealed") {
		t.Errorf("stored file = %s, want the token sealed whole", f)
	}
	got, err := s.Load(ctx, "g")
	if err != nil || got.AccessToken != "at-1" || got.RefreshToken != srv.currentRT() || got.Extra("id_token") != "id-1" {
		t.Errorf("Load = %v, %v; want at-1 with id-1 and the server's refresh token", got, err)
	}
}
