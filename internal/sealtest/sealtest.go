// Package sealtest attacks store.Seal over a real store as whoever can write to
// the store would: each attack edits the value kept for a grant past the Store interface, and
// the grant must then be refused as a *store.SealError, with nothing sent to the token
// server, to the API, or to an address the attacker chose, and the value left as it is. The
// tests of filestore.Store and of the Redis and PostgreSQL stores run it.
package sealtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

// now is the clock of the attacks' TokenSources.
var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// run names this run in the keys, so that runs sharing a server do not meet.
var run = strconv.FormatInt(time.Now().UnixNano(), 36)

// keys counts the keys given out in this run.
var keys atomic.Int64

// newKey returns a key used by nothing else, one filestore.Store keeps as its file name.
func newKey() string { return fmt.Sprintf("sealtest-%s-%d", run, keys.Add(1)) }

// server is an httptest.Server that counts the requests it receives and checks each.
type server struct {
	*httptest.Server
	requests atomic.Int64
}

func newServer(t *testing.T, check func(w http.ResponseWriter, r *http.Request)) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		check(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// servers are the parties a grant's token can be sent to.
type servers struct {
	token, api, attacker *server
}

// newServers starts a token server that takes only the grant's refresh token, rt-SECRET, and
// answers at-fresh with instance_url the API (as Salesforce does); the API, which takes only
// at-fresh; and the attacker's server, which nothing may reach.
func newServers(t *testing.T) *servers {
	s := &servers{}
	s.api = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); r.Method != http.MethodGet || r.URL.Path != "/data" || got != "Bearer at-fresh" {
			t.Errorf("API got %s %s with Authorization %.20q; want GET /data with Bearer at-fresh", r.Method, r.URL.Path, got)
		}
	})
	s.token = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, secret, basic := r.BasicAuth()
		if err := r.ParseForm(); err != nil {
			t.Errorf("token request: %v", err)
		}
		want := "grant_type=refresh_token&refresh_token=rt-SECRET"
		if got := r.PostForm.Encode(); r.Method != http.MethodPost || r.URL.Path != "/token" || got != want ||
			!basic || id != "app" || secret != "s3cret" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("token server got %s %s (basic auth %v %q), form %q; want POST /token, app's basic auth, %s",
				r.Method, r.URL.Path, basic, id, strings.ReplaceAll(got, "SECRET", "…"), strings.ReplaceAll(want, "SECRET", "…"))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-fresh","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2","instance_url":%q}`, s.api.URL)
	})
	s.attacker = newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	return s
}

// counts returns the requests each server received.
func (s *servers) counts() [3]int64 {
	return [3]int64{s.token.requests.Load(), s.api.requests.Load(), s.attacker.requests.Load()}
}

// use is what a Salesforce-style application does with the grant of key: it asks a
// TokenSource for a token and sends it to the token's instance_url, or to the API without one.
func (s *servers) use(key string, store oauth2refresh.Store) error {
	e := &oauth2refresh.Endpoint{TokenURL: s.token.URL + "/token", ClientID: "app", ClientSecret: "s3cret"}
	src := e.TokenSource(context.Background(), nil, oauth2refresh.WithStore(store, key),
		oauth2refresh.WithClock(func() time.Time { return now }))
	tok, err := src.Token()
	if err != nil {
		return err
	}
	instance, _ := tok.Extra("instance_url").(string)
	if instance == "" {
		instance = s.api.URL
	}
	req, err := http.NewRequest(http.MethodGet, instance+"/data", nil)
	if err != nil {
		return err
	}
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// victim is the grant's token as saved: its access token has expired (a TokenSource refreshes
// before sending anything) or, live, is at-fresh for another hour and the token has no
// instance_url; its refresh token expires in 30 days.
func victim(s *servers, live bool) *oauth2.Token {
	tok := &oauth2.Token{AccessToken: "at-stale-SECRET", TokenType: "Bearer", RefreshToken: "rt-SECRET",
		Expiry: now.Add(-time.Minute), ExpiresIn: 3600}
	extra := map[string]any{"instance_url": s.api.URL, "id_token": "id-SECRET",
		"refresh_expiry": now.AddDate(0, 0, 30).Format(time.RFC3339)}
	if live {
		tok.AccessToken, tok.Expiry = "at-fresh", now.Add(time.Hour)
		delete(extra, "instance_url") // the application's default API, then
	}
	return tok.WithExtra(extra)
}

// value is a stored value as a JSON object, numbers kept as written.
type value map[string]any

func decode(t *testing.T, v string) value {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	var m value
	if err := d.Decode(&m); err != nil {
		t.Fatalf("stored value: %v", err)
	}
	return m
}

// extra returns the "extra" member of m, added if m has none.
func (m value) extra() map[string]any {
	e, _ := m["extra"].(map[string]any)
	if e == nil {
		e = map[string]any{}
		m["extra"] = e
	}
	return e
}

// set sets member name of m to v, or deletes it if v is nil.
func (m value) set(name string, v any) {
	if v == nil {
		delete(m, name)
		return
	}
	m[name] = v
}

// Attacks runs the attacks on store.Seal(inner), reaching inner's values with raw, whose Put
// must replace the value kept for a key (Location is not used). Each attack runs with
// store.Sealer.AcceptPlaintext false, and again with it true unless the edited value is clear
// (nothing sealed in it), which AcceptPlaintext lets through.
func Attacks(t *testing.T, inner oauth2refresh.Store, raw storetest.Raw) {
	ctx := context.Background()
	sealer, err := store.NewSealer(map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32)}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, key string, m value) string {
		t.Helper()
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Put(ctx, key, string(b)); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	attacker := "https://attacker.invalid" // replaced by the attacker's server in each run
	tests := []struct {
		name  string
		edit  func(m, other value) value // the value put in place of m, the victim's; other is another grant's
		clear bool                       // the value put has nothing sealed
		live  bool                       // the victim's access token is live (see victim)
	}{
		{"clear Extra members injected", func(m, _ value) value {
			m.extra()["instance_url"] = attacker
			m.extra()["id_token"] = "id-forged"
			return m
		}, false, true},
		{"expiry edited", func(m, _ value) value { m["expiry"] = "2099-01-01T00:00:00Z"; return m }, false, false},
		{"expires_in edited", func(m, _ value) value { m["expires_in"] = 86400; return m }, false, false},
		{"token type edited", func(m, _ value) value { m["token_type"] = "MAC"; return m }, false, false},
		{"refresh token expiry edited into the past", func(m, _ value) value {
			m["refresh_expiry"] = "2000-01-01T00:00:00Z"
			return m
		}, false, false},
		{"DPoP key binding edited", func(m, _ value) value { m["dpop_jkt"] = "forged-thumbprint"; return m }, false, false},
		{"access token added", func(m, _ value) value { m["access_token"] = "at-forged"; return m }, false, false},
		{"sealed members swapped", func(m, _ value) value {
			at, rt := m["access_token"], m["refresh_token"]
			m.set("access_token", rt)
			m.set("refresh_token", at)
			if at == nil {
				m["refresh_token"] = "rt-forged"
			}
			return m
		}, false, false},
		{"sealed refresh token moved to access_token", func(m, _ value) value {
			m["access_token"] = m["refresh_token"]
			delete(m, "refresh_token")
			return m
		}, false, false},
		{"sealed refresh token copied into the sealed Extra member", func(m, _ value) value {
			m.extra()["oauth2refresh_sealed"] = m["refresh_token"]
			return m
		}, false, false},
		{"value of another grant", func(_, other value) value { return other }, false, false},
		{"clear token in place", func(m, _ value) value {
			return value{"version": m["version"], "access_token": "at-forged", "token_type": "Bearer",
				"expiry": "2099-01-01T00:00:00Z", "extra": map[string]any{"instance_url": attacker}}
		}, true, false},
		{"clear dead mark in place", func(m, _ value) value {
			return value{"version": m["version"], "dead": map[string]any{"reason": "revoked", "at": "2030-01-01T00:00:00Z"}}
		}, true, false},
	}

	t.Run("untouched", func(t *testing.T) {
		// The control: the untouched grant refreshes once and reaches the API.
		s := newServers(t)
		sealed := store.Seal(inner, sealer)
		key := newKey()
		if err := oauth2refresh.SaveToken(ctx, sealed, key, victim(s, false)); err != nil {
			t.Fatal(err)
		}
		if err := s.use(key, sealed); err != nil {
			t.Fatalf("using the untouched grant: %v", err)
		}
		if diff := [3]int64{1, 1, 0}; s.counts() != diff {
			t.Errorf("requests to the token server, the API, the attacker = %v, want %v", s.counts(), diff)
		}
	})
	for _, accept := range []bool{false, true} {
		for _, tc := range tests {
			if accept && tc.clear {
				continue
			}
			t.Run(fmt.Sprintf("%s/AcceptPlaintext=%v", tc.name, accept), func(t *testing.T) {
				s := newServers(t)
				attacker = s.attacker.URL
				k := *sealer
				k.AcceptPlaintext = accept
				sealed := store.Seal(inner, &k)
				key, otherKey := newKey(), newKey()
				if err := oauth2refresh.SaveToken(ctx, sealed, key, victim(s, tc.live)); err != nil {
					t.Fatal(err)
				}
				other := (&oauth2.Token{AccessToken: "at-other", TokenType: "Bearer", RefreshToken: "rt-other",
					Expiry: now.AddDate(1, 0, 0)}).WithExtra(map[string]any{"instance_url": attacker})
				if err := oauth2refresh.SaveToken(ctx, sealed, otherKey, other); err != nil {
					t.Fatal(err)
				}
				v, err := raw.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				ov, err := raw.Get(ctx, otherKey)
				if err != nil {
					t.Fatal(err)
				}
				written := put(t, key, tc.edit(decode(t, v), decode(t, ov)))

				check := func(what string, err error) {
					t.Helper()
					var se *store.SealError
					if !errors.As(err, &se) || se.Key != key {
						t.Errorf("%s = %v, want a *SealError for the grant", what, err)
					}
					if err != nil && (strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "sealed.v")) {
						t.Errorf("%s: error text quotes the value: %v", what, err)
					}
				}
				got, err := sealed.Load(ctx, key)
				check("Load", err)
				if got != nil {
					t.Errorf("Load returned a token")
				}
				l, err := sealed.Lock(ctx, key, time.Minute)
				check("Lock", err)
				if l != nil {
					l.Release(ctx)
				}
				// The refused Lock held no lease: the grant can be locked at once.
				short, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if l, err := inner.Lock(short, key, time.Minute); err != nil {
					t.Errorf("Lock after the refused Lock: %v", err)
				} else {
					l.Release(ctx)
				}
				check("using the grant", s.use(key, sealed))
				if want := [3]int64{0, 0, 0}; s.counts() != want {
					t.Errorf("requests to the token server, the API, the attacker = %v, want %v", s.counts(), want)
				}
				if v, err := raw.Get(ctx, key); err != nil || v != written {
					t.Errorf("stored value changed (%v): the library wrote over the grant", err)
				}
			})
		}
	}
}

// Key1 and Key2 are keys for tests, 32 bytes each, told apart by their first byte.
var (
	Key1 = bytes.Repeat([]byte{1}, 32)
	Key2 = bytes.Repeat([]byte{2}, 32)
)

// NewSealer returns store.NewSealer(keys, current), failing t if it fails.
func NewSealer(t testing.TB, keys map[string][]byte, current string) *store.Sealer {
	t.Helper()
	k, err := store.NewSealer(keys, current)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealedV1 is a token as the previous release's store.Seal stored it (see PreviousLayout).
//
//go:embed testdata/sealed-v1.json
var sealedV1 []byte

// PreviousLayout returns testdata/sealed-v1.json, the token of the store package's tests'
// secretToken as the previous release's Seal stored it for key "g" with Key1 as "k1" (its
// members sealed one by one, its token type, expiry, expires_in, dpop_jkt and refresh_expiry
// in clear), as a JSON object, edited by edit unless it is nil.
func PreviousLayout(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(sealedV1, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
