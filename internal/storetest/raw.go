package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// Raw reaches a store's stored value of a key directly, past the Store interface, for the
// checks of the value's format.
type Raw struct {
	// Get returns the value stored under key.
	Get func(ctx context.Context, key string) (string, error)
	// Put stores value under key as it is.
	Put func(ctx context.Context, key, value string) error
	// Location is what the Location of a *CorruptTokenError for key must contain.
	Location func(key string) string
}

// StoredFormat checks that the value a store saves is oauth2refresh's stored-token format
// (EncodeStoredToken), versioned by the fence of the lease that saved it.
func StoredFormat(t *testing.T, s oauth2refresh.Store, raw Raw) {
	ctx := context.Background()
	tok := &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 60}
	for range 2 {
		if err := oauth2refresh.SaveToken(ctx, s, "g", tok, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	v, err := raw.Get(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	got, version, err := oauth2refresh.DecodeStoredToken("g", "", []byte(v))
	if err != nil {
		t.Fatalf("DecodeStoredToken of the stored value: %v", err)
	}
	if diff := cmp.Diff(tok, got, Compare); diff != "" {
		t.Errorf("stored token mismatch (-want +got):\n%s", diff)
	}
	if version != 2 {
		t.Errorf("version = %d, want 2 (the fence of the second lease)", version)
	}
}

// Corrupt checks that a stored value that cannot be decoded makes Load and Lock fail with a
// *CorruptTokenError that says what is wrong without quoting the value, that the failed Lock
// holds no lease, and that the value is left as it was.
func Corrupt(t *testing.T, s oauth2refresh.Store, raw Raw) {
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
			key := "corrupt-" + tc.name
			if err := raw.Put(ctx, key, tc.value); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *oauth2refresh.CorruptTokenError
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
