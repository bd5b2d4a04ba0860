package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

// Raw reaches the value a store keeps for a key directly, past the Store interface, for the
// checks of a store that keeps tokens in the format of store.Encode. All
// three fields must be set.
type Raw struct {
	// Get returns the value stored under key.
	Get func(ctx context.Context, key string) (string, error)
	// Put stores value under key as it is, as a damaged write or another program would.
	Put func(ctx context.Context, key, value string) error
	// Location returns what the Location of a *store.CorruptTokenError for key must
	// contain, such as the file's path or the server's key.
	Location func(key string) string
}

// storedFormat checks that the value s saves is the stored-token format (store.Encode),
// that Load returns its Extra values, and that its version grows with each save.
func storedFormat(t *testing.T, s oauth2refresh.Store, raw Raw) {
	ctx := context.Background()
	key := newKey(t)
	extra := map[string]any{"id_token": "eyJ.x.y", "scope": "openid email", "refresh_expiry": "2030-07-01T03:04:05Z"}
	tok := (&oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 60}).WithExtra(extra)
	var last uint64
	for i := range 2 {
		if err := oauth2refresh.SaveToken(ctx, s, key, tok); err != nil {
			t.Fatal(err)
		}
		v, err := raw.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, version, err := store.Decode(key, "", []byte(v))
		if err != nil {
			t.Fatalf("store.Decode of the stored value: %v", err)
		}
		checkToken(t, "stored token", tok, got)
		loaded, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range extra {
			if got.Extra(k) != want || loaded.Extra(k) != want {
				t.Errorf("Extra(%q) = %v stored, %v loaded; want %v", k, got.Extra(k), loaded.Extra(k), want)
			}
		}
		if version <= last {
			t.Errorf("version after save %d = %d, want more than %d", i+1, version, last)
		}
		last = version
	}
}

// corruptValue checks that a stored value that cannot be decoded makes Load and Lock fail
// with a *store.CorruptTokenError that says what is wrong without quoting the value, that the failed
// Lock holds no lease, and that the value is left as it was.
func corruptValue(t *testing.T, s oauth2refresh.Store, raw Raw) {
	ctx := context.Background()
	const secret = "SECRET-refresh-token"
	full := `{"version":1,"access_token":"at","refresh_token":"` + secret + `"}`
	tests := []struct{ name, value, why string }{
		{"empty", "", "empty"},
		{"truncated", full[:len(full)-8], "truncated JSON"},
		{"garbage", "\x01" + secret, "invalid JSON at byte 1"},
		{"no token", `{"version":1,"token_type":"Bearer"}`, "neither access token nor refresh token"},
		{"no version", `{"access_token":"at","refresh_token":"` + secret + `"}`, "no version"},
		{"wrong shape", `["` + secret + `"]`, "JSON of the wrong shape"},
		{"trailing data", full + full, "data after the object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			if err := raw.Put(ctx, key, tc.value); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *store.CorruptTokenError
				if !errors.As(err, &ce) || ce.Key != key {
					t.Fatalf("%s = %v, want a *CorruptTokenError for %q", what, err, key)
				}
				if loc := raw.Location(key); !strings.Contains(ce.Location, loc) {
					t.Errorf("%s: location %q does not name %s", what, ce.Location, loc)
				}
				if !strings.Contains(err.Error(), tc.why) {
					t.Errorf("%s: error %q does not say %q", what, err, tc.why)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error quotes the value: %v", what, err)
				}
			}
			_, err := s.Load(ctx, key)
			check("Load", err)
			_, err = s.Lock(ctx, key, time.Minute)
			check("Lock", err)
			// The failed Lock released its lease.
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := s.Lock(short, key, time.Minute); errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the failed Lock kept its lease")
			}
			if v, err := raw.Get(ctx, key); err != nil || v != tc.value {
				t.Errorf("value changed to %q (%v)", v, err)
			}
		})
	}
}
