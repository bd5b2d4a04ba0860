package compat_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat"
)

// TestExpiryMarginSideBySide: an app replacing oauth2.ReuseTokenSourceWithExpiry relies on "never
// hand out a token with less than the margin left", for a token it hands in (one it saved) as
// for one the source refreshed. Both libraries refuse such a token and refresh, and both serve
// one with more than the margin left.
func TestExpiryMarginSideBySide(t *testing.T) {
	tests := []struct {
		name   string
		margin time.Duration
		left   time.Duration
		served bool
	}{
		{"default margin, 5 s left", 10 * time.Second, 5 * time.Second, false},
		{"default margin, 30 s left", 10 * time.Second, 30 * time.Second, true},
		{"5 min margin, 4 min left", 5 * time.Minute, 4 * time.Minute, false},
		{"5 min margin, 6 min left", 5 * time.Minute, 6 * time.Minute, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return ok(okBody) })
			c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
			ctx := context.Background()
			handedIn := func() *oauth2.Token {
				return &oauth2.Token{AccessToken: "saved-at", RefreshToken: "rt-0", Expiry: time.Now().Add(tc.left)}
			}
			sources := map[string]oauth2.TokenSource{
				"x-oauth2": oauth2.ReuseTokenSourceWithExpiry(handedIn(), c.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-0"}), tc.margin),
				"oauth2refresh": compat.TokenSource(ctx, c, handedIn(),
					oauth2refresh.ExpiryMargin(tc.margin), oauth2refresh.EarlyRefresh(0)),
			}
			want := map[string]string{"x-oauth2": "at-1", "oauth2refresh": "at-1"}
			if tc.served {
				want = map[string]string{"x-oauth2": "saved-at", "oauth2refresh": "saved-at"}
			}
			got := map[string]string{}
			for name, src := range sources {
				tok, err := src.Token()
				if err != nil {
					t.Fatalf("%s: Token: %v", name, err)
				}
				got[name] = tok.AccessToken
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("access token served (-want +got):\n%s", diff)
			}
		})
	}
}
