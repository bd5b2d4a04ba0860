package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/storetest"
	"golang.org/x/oauth2"
)

func TestStoredFormat(t *testing.T) {
	// The token key holds oauth2refresh's stored-token format, versioned by the fence.
	ctx := context.Background()
	s := testStore(t)
	tok := &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 60}
	for range 2 {
		if err := oauth2refresh.SaveToken(ctx, s, "g", tok, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Client.Get(ctx, s.Prefix+"{k:g}:token").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	got, version, err := oauth2refresh.DecodeStoredToken("g", "", v)
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
