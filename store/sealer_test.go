package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/sealtest"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

// Test keys, 32 bytes each, and sealers of them: see sealtest.
var (
	key1, key2 = sealtest.Key1, sealtest.Key2
	newSealer  = sealtest.NewSealer
)

// secretToken is a token whose every secret contains "secret".
func secretToken() *oauth2.Token {
	return (&oauth2.Token{AccessToken: "at-secret", TokenType: "Bearer", RefreshToken: "rt-secret",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 3600}).WithExtra(map[string]any{
		"id_token": "id-secret", "scope": "openid", "refresh_expiry": "2030-07-01T03:04:05Z", "dpop_jkt": "thumb"})
}

// opened is what a test compares of a token: its fields and the Extra values of secretToken.
func opened(t *oauth2.Token) map[string]any {
	if t == nil {
		return nil
	}
	m := map[string]any{"access": t.AccessToken, "type": t.TokenType, "refresh": t.RefreshToken,
		"expiry": t.Expiry.UTC(), "expires_in": t.ExpiresIn}
	for _, k := range []string{"id_token", "scope", "refresh_expiry", "dpop_jkt"} {
		m[k] = t.Extra(k)
	}
	return m
}

func TestSealStoreConformance(t *testing.T) {
	s := store.Seal(&filestore.Store{Dir: t.TempDir()}, newSealer(t, map[string][]byte{"k1": key1}, "k1"))
	storetest.TestStore(t, s, storetest.Options{})
}

func TestSealStoreAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	inner := &filestore.Store{Dir: dir}
	s := store.Seal(inner, newSealer(t, map[string][]byte{"k1": key1}, "k1"))
	if err := oauth2refresh.SaveToken(ctx, s, "tenant-1", secretToken()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("files = %v, want one", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The token is sealed whole: nothing of it is in clear, not even its expiry.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	sealed, _ := strconv.Unquote(string(members["refresh_token"]))
	if len(members) != 2 || string(members["version"]) != "1" || !strings.HasPrefix(sealed, "sealed.v1.k1.") {
		t.Errorf("stored file = %s, want only the version and the token sealed with k1", raw)
	}
	for _, clear := range []string{"secret", "Bearer", "3600", "thumb", "2030"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("stored file holds %s in clear: %s", clear, raw)
		}
	}
	want := opened(secretToken())
	got, err := s.Load(ctx, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, opened(got)); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	l, err := s.Lock(ctx, "tenant-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if diff := cmp.Diff(want, opened(l.Token())); diff != "" {
		t.Errorf("Lease.Token (-want +got):\n%s", diff)
	}
}

func TestSealStoreRefusals(t *testing.T) {
	ctx := context.Background()
	k1 := map[string][]byte{"k1": key1}
	tests := []struct {
		name    string
		keys    map[string][]byte                             // the sealer that reads
		plain   bool                                          // its AcceptPlaintext
		write   func(t *testing.T, inner oauth2refresh.Store) // puts the value under "victim"
		keyID   string
		unknown bool // Err is ErrUnknownSealKey
	}{{
		name: "copied from another grant",
		keys: k1,
		write: func(t *testing.T, inner oauth2refresh.Store) {
			sealTo(t, inner, "attacker", k1)
			tok, err := inner.Load(ctx, "attacker")
			if err != nil {
				t.Fatal(err)
			}
			save(t, inner, "victim", tok)
		},
		keyID: "k1",
	}, {
		name:    "unknown key id",
		keys:    map[string][]byte{"k2": key2},
		write:   func(t *testing.T, inner oauth2refresh.Store) { sealTo(t, inner, "victim", k1) },
		keyID:   "k1",
		unknown: true,
	}, {
		name:  "same id, other key",
		keys:  map[string][]byte{"k1": key2},
		write: func(t *testing.T, inner oauth2refresh.Store) { sealTo(t, inner, "victim", k1) },
		keyID: "k1",
	}, {
		name: "altered",
		keys: k1,
		write: func(t *testing.T, inner oauth2refresh.Store) {
			sealTo(t, inner, "victim", k1)
			tok, err := inner.Load(ctx, "victim")
			if err != nil {
				t.Fatal(err)
			}
			b := []byte(tok.RefreshToken)
			b[len(b)-3] ^= 'A' ^ 'B'
			if b[len(b)-3] == 0 || !strings.HasPrefix(string(b), "sealed.v1.k1.") {
				t.Fatal("bad alteration")
			}
			tok.RefreshToken = string(b)
			save(t, inner, "victim", tok)
		},
		keyID: "k1",
	}, {
		name:  "plaintext",
		keys:  k1,
		write: func(t *testing.T, inner oauth2refresh.Store) { save(t, inner, "victim", secretToken()) },
	}, {
		name: "plaintext extra",
		keys: k1,
		write: func(t *testing.T, inner oauth2refresh.Store) {
			sealTo(t, inner, "victim", k1)
			tok, err := inner.Load(ctx, "victim")
			if err != nil {
				t.Fatal(err)
			}
			save(t, inner, "victim", tok.WithExtra(map[string]any{"id_token": "id-forged"}))
		},
		keyID: "k1", // the sealed token opens; the member beside it is refused
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := &filestore.Store{Dir: t.TempDir()}
			tc.write(t, inner)
			k := newSealer(t, tc.keys, onlyID(tc.keys))
			k.AcceptPlaintext = tc.plain
			s := store.Seal(inner, k)
			check := func(what string, tok *oauth2.Token, err error) {
				t.Helper()
				var se *store.SealError
				if !errors.As(err, &se) || tok != nil {
					t.Fatalf("%s = %v, %v; want nil, a *SealError", what, tok, err)
				}
				if se.Key != "victim" || se.KeyID != tc.keyID || errors.Is(err, store.ErrUnknownSealKey) != tc.unknown {
					t.Errorf("%s: SealError{Key: %q, KeyID: %q, Err: %v}; want key victim, key id %q, unknown key %v",
						what, se.Key, se.KeyID, se.Err, tc.keyID, tc.unknown)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sealed.v1") {
					t.Errorf("%s: error text quotes the value: %v", what, err)
				}
			}
			tok, err := s.Load(ctx, "victim")
			check("Load", tok, err)
			l, err := s.Lock(ctx, "victim", time.Minute)
			if l != nil {
				tok = l.Token()
			}
			check("Lock", tok, err)
			// Lock held no lease: the grant can be locked at once.
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			l, err = inner.Lock(short, "victim", time.Minute)
			if err != nil {
				t.Fatalf("Lock after the refused Lock: %v", err)
			}
			l.Release(ctx)
		})
	}
}

// sealTo stores secretToken under key in inner, sealed with keys' only key.
func sealTo(t *testing.T, inner oauth2refresh.Store, key string, keys map[string][]byte) {
	t.Helper()
	save(t, store.Seal(inner, newSealer(t, keys, onlyID(keys))), key, secretToken())
}

// onlyID returns the id of the one key in keys.
func onlyID(keys map[string][]byte) string {
	for id := range keys {
		return id
	}
	return ""
}

func save(t *testing.T, s oauth2refresh.Store, key string, tok *oauth2.Token) {
	t.Helper()
	if err := oauth2refresh.SaveToken(context.Background(), s, key, tok); err != nil {
		t.Fatal(err)
	}
}

func TestSealStorePlaintextMigration(t *testing.T) {
	ctx := context.Background()
	inner := &filestore.Store{Dir: t.TempDir()}
	save(t, inner, "g", secretToken())
	k := newSealer(t, map[string][]byte{"k1": key1}, "k1")
	k.AcceptPlaintext = true
	s := store.Seal(inner, k)
	l, err := s.Lock(ctx, "g", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(opened(secretToken()), opened(l.Token())); diff != "" {
		t.Errorf("plaintext Lease.Token (-want +got):\n%s", diff)
	}
	if err := l.Save(ctx, l.Token()); err != nil {
		t.Fatal(err)
	}
	l.Release(ctx)
	raw, err := inner.Load(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw.RefreshToken, "sealed.v1.k1.") || raw.Extra("id_token") != nil {
		t.Errorf("after the save, stored refresh token %.20q and id_token %v; want both sealed", raw.RefreshToken, raw.Extra("id_token"))
	}
	k.AcceptPlaintext = false
	got, err := s.Load(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(opened(secretToken()), opened(got)); diff != "" {
		t.Errorf("resealed Load (-want +got):\n%s", diff)
	}
}

func TestSealerRotation(t *testing.T) {
	ctx := context.Background()
	inner := &filestore.Store{Dir: t.TempDir()}
	old := store.Seal(inner, newSealer(t, map[string][]byte{"k1": key1}, "k1"))
	save(t, old, "g", secretToken())
	rotated := store.Seal(inner, newSealer(t, map[string][]byte{"k1": key1, "k2": key2}, "k2"))
	l, err := rotated.Lock(ctx, "g", time.Minute)
	if err != nil {
		t.Fatalf("Lock of a value sealed with the old key: %v", err)
	}
	if diff := cmp.Diff(opened(secretToken()), opened(l.Token())); diff != "" {
		t.Errorf("old value (-want +got):\n%s", diff)
	}
	if err := l.Save(ctx, secretToken()); err != nil {
		t.Fatal(err)
	}
	l.Release(ctx)
	raw, err := inner.Load(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if raw.AccessToken != "" || !strings.HasPrefix(raw.RefreshToken, "sealed.v1.k2.") {
		t.Errorf("after rotation stored %.16q, %.16q; want the token sealed whole with k2", raw.AccessToken, raw.RefreshToken)
	}
	if _, err := old.Load(ctx, "g"); !errors.Is(err, store.ErrUnknownSealKey) {
		t.Errorf("Load with k1 only of a value sealed with k2 = %v, want ErrUnknownSealKey", err)
	}
}

func TestNewSealer(t *testing.T) {
	tests := []struct {
		name    string
		keys    map[string][]byte
		current string
		want    string // error text; "" for none
	}{
		{"ok", map[string][]byte{"k1": key1, "2026-12_b": key2}, "2026-12_b", ""},
		{"no current", map[string][]byte{"k1": key1}, "k2", `oauth2refresh: making sealer: no key with the current id "k2"`},
		{"short key", map[string][]byte{"k1": key1[:16]}, "k1", `oauth2refresh: making sealer: key "k1" has 16 bytes, want 32`},
		{"id with a dot", map[string][]byte{"k.1": key1}, "k.1", `oauth2refresh: making sealer: invalid key id "k.1"`},
		{"empty id", map[string][]byte{"": key1}, "", `oauth2refresh: making sealer: invalid key id ""`},
		{"long id", map[string][]byte{strings.Repeat("a", 65): key1}, strings.Repeat("a", 65), "oauth2refresh: making sealer: invalid key id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := store.NewSealer(tc.keys, tc.current)
			if tc.want == "" {
				if err != nil || k == nil {
					t.Fatalf("NewSealer = %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || k != nil {
				t.Errorf("NewSealer = %v, %v; want error %q", k, err, tc.want)
			}
		})
	}
}

// Whoever can write a filestore.Store's files cannot make a sealed grant send anything: every edit is
// a *SealError (see sealtest.Attacks).
func TestSealStoreAttacks(t *testing.T) {
	dir := t.TempDir()
	path := func(key string) string { return filepath.Join(dir, key+".json") }
	sealtest.Attacks(t, &filestore.Store{Dir: dir}, storetest.Raw{
		Get: func(_ context.Context, key string) (string, error) {
			b, err := os.ReadFile(path(key))
			return string(b), err
		},
		Put: func(_ context.Context, key, value string) error { return os.WriteFile(path(key), []byte(value), 0o600) },
	})
}

// A value sealed by the previous release is read for what it authenticates: its refresh token,
// its sealed Extra values and its dpop_jkt; its access token, which a clear expiry dates, and
// its other clear members are left out, so that editing them changes nothing. A clear member
// beside its sealed ones is refused, as it was not (issue 17).
func TestSealStorePreviousLayout(t *testing.T) {
	ctx := context.Background()
	read := map[string]any{"access": "", "type": "", "refresh": "rt-secret", "expiry": time.Time{}, "expires_in": int64(0),
		"id_token": "id-secret", "scope": "openid", "refresh_expiry": nil, "dpop_jkt": "thumb"}
	tests := []struct {
		name string
		edit func(m map[string]any)
		want map[string]any // opened(Load); nil: a *SealError
	}{
		{"as written", func(map[string]any) {}, read},
		{"expiry edited", func(m map[string]any) { m["expiry"] = "2099-01-01T00:00:00Z" }, read},
		{"refresh expiry edited", func(m map[string]any) { m["refresh_expiry"] = "2000-01-01T00:00:00Z" }, read},
		{"token type edited", func(m map[string]any) { m["token_type"] = "MAC" }, read},
		{"clear Extra members injected", func(m map[string]any) {
			m["extra"].(map[string]any)["instance_url"] = "https://attacker.example"
		}, nil},
		{"clear id_token injected", func(m map[string]any) { m["extra"].(map[string]any)["id_token"] = "id-forged" }, nil},
		{"sealed Extra replaced by clear members", func(m map[string]any) {
			m["extra"] = map[string]any{"id_token": "id-forged"}
		}, nil},
		{"access token in clear", func(m map[string]any) { m["access_token"] = "at-forged" }, nil},
		{"refresh token in clear", func(m map[string]any) { m["refresh_token"] = "rt-forged" }, nil},
		{"sealed members swapped", func(m map[string]any) {
			m["access_token"], m["refresh_token"] = m["refresh_token"], m["access_token"]
		}, nil},
	}
	for _, tc := range tests {
		for _, accept := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/AcceptPlaintext=%v", tc.name, accept), func(t *testing.T) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "g.json"), sealtest.PreviousLayout(t, tc.edit), 0o600); err != nil {
					t.Fatal(err)
				}
				k := newSealer(t, map[string][]byte{"k1": key1}, "k1")
				k.AcceptPlaintext = accept
				got, err := store.Seal(&filestore.Store{Dir: dir}, k).Load(ctx, "g")
				if tc.want == nil {
					var se *store.SealError
					if !errors.As(err, &se) || got != nil {
						t.Fatalf("Load = %v, %v; want a *SealError", got, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, opened(got)); diff != "" {
					t.Errorf("Load (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// FuzzSealStoreLoad checks Seal.Load on any value a store writer can put in a filestore.Store's
// file: it never panics; it fails with a *SealError or a *CorruptTokenError whose text quotes
// no secret, or returns a token that was sealed: secretToken as sealed whole, or as the
// previous release sealed it (read for what it authenticates).
func FuzzSealStoreLoad(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	path := filepath.Join(dir, "g.json")
	s := store.Seal(&filestore.Store{Dir: dir}, newSealer(f, map[string][]byte{"k1": key1}, "k1"))
	if err := oauth2refresh.SaveToken(ctx, s, "g", secretToken()); err != nil {
		f.Fatal(err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	previous := sealtest.PreviousLayout(f, nil)
	f.Add(whole)
	f.Add(previous)
	f.Add([]byte(`{"version":1,"access_token":"at-secret","refresh_token":"rt-secret"}`))
	f.Add([]byte(`{"version":1,"dead":{"reason":"revoked"}}`))
	f.Add(bytes.Replace(whole, []byte(`"}`), []byte(`","expiry":"2099-01-01T00:00:00Z"}`), 1))
	previousRead := map[string]any{"access": "", "type": "", "refresh": "rt-secret", "expiry": time.Time{}, "expires_in": int64(0),
		"id_token": "id-secret", "scope": "openid", "refresh_expiry": nil, "dpop_jkt": "thumb"}
	f.Fuzz(func(t *testing.T, v []byte) {
		if err := os.WriteFile(path, v, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "g")
		if err != nil {
			var se *store.SealError
			var ce *store.CorruptTokenError
			if !errors.As(err, &se) && !errors.As(err, &ce) || got != nil {
				t.Fatalf("Load = %v, %v; want a *SealError or a *CorruptTokenError", got, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error text quotes a secret: %v", err)
			}
			return
		}
		if got == nil {
			return // an empty file is no token
		}
		if o := opened(got); !cmp.Equal(o, opened(secretToken())) && !cmp.Equal(o, previousRead) {
			t.Fatalf("Load = %v, a token that was not sealed", o)
		}
	})
}
