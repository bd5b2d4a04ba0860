package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/storetest"
	"golang.org/x/oauth2"
)

func TestStoredFormat(t *testing.T) {
	// The token column holds oauth2refresh's stored-token format, versioned by the fence.
	ctx := context.Background()
	s := testStore(t)
	tok := &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 60}
	for range 2 {
		if err := oauth2refresh.SaveToken(ctx, s, "g", tok, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var v string
	if err := s.DB.QueryRow(ctx, `SELECT token FROM "`+s.Table+`" WHERE key = 'g'`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	got, version, err := oauth2refresh.DecodeStoredToken("g", "", []byte(v))
	if err != nil {
		t.Fatalf("DecodeStoredToken of the stored value: %v", err)
	}
	if diff := cmp.Diff(tok, got, storetest.Compare); diff != "" {
		t.Errorf("stored token mismatch (-want +got):\n%s", diff)
	}
	if version != 2 {
		t.Errorf("version = %d, want 2 (the fence of the second lease)", version)
	}
}

func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
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
			if _, err := s.DB.Exec(ctx, `INSERT INTO "`+s.Table+`" (key, token) VALUES ($1, $2)`, key, tc.value); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ce *oauth2refresh.CorruptTokenError
				if !errors.As(err, &ce) || ce.Key != key {
					t.Fatalf("%s = %v, want a *CorruptTokenError for %q", what, err, key)
				}
				if !strings.Contains(ce.Location, s.Table) {
					t.Errorf("%s: location %q does not name the table %s", what, ce.Location, s.Table)
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
			var v string
			if err := s.DB.QueryRow(ctx, `SELECT token FROM "`+s.Table+`" WHERE key = $1`, key).Scan(&v); err != nil || v != tc.value {
				t.Errorf("value changed to %q (%v)", v, err)
			}
		})
	}
}
