package googleauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/googleauth"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// TestGrantClientOption: a generated client authorized by a grant of a Manager gets the
// grant's token, keeps working after the Manager dropped the grant from memory (made again
// from the store, without a token request), and reports a dead grant with oauth2refresh's
// sentinels.
func TestGrantClientOption(t *testing.T) {
	ts := newTokenServer(t)
	api := newAPIServer(t)
	ctx := context.Background()
	m := oauth2refresh.NewManager(endpoint(ts), &filestore.Store{Dir: t.TempDir()},
		&oauth2refresh.ManagerOptions{MaxGrants: 1})
	if err := m.Grant("tenant-1").SaveToken(ctx, &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	other := &oauth2.Token{AccessToken: "other", RefreshToken: "other", Expiry: time.Now().Add(time.Hour)}
	if err := m.Grant("tenant-2").SaveToken(ctx, other); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, api, googleauth.ClientOption(m.Grant("tenant-1")))
	for i := range 2 {
		if err := list(ctx, svc); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, err := m.Grant("tenant-2").Token(); err != nil { // drops tenant-1
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"Bearer at-1", "Bearer at-1"}, api.take()); diff != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", diff)
	}
	if n := ts.count.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}

	// A grant the server refuses.
	refusing := newTokenServer(t)
	refusing.fail = func() (int, string) { return 400, `{"error":"invalid_grant"}` }
	m = oauth2refresh.NewManager(endpoint(refusing), &filestore.Store{Dir: t.TempDir()}, nil)
	if err := m.Grant("tenant-3").SaveToken(ctx, &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	svc = newService(t, api, googleauth.ClientOption(m.Grant("tenant-3")))
	err := list(ctx, svc)
	var d *oauth2refresh.DeadGrantError
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) || !errors.As(err, &d) || d.Key != "tenant-3" {
		t.Errorf("call with a refused grant: %v, want a *DeadGrantError of tenant-3", err)
	}
}
