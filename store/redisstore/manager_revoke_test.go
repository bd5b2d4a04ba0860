package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	redisstore "github.com/tokenkit/oauth2refresh/store/redisstore"
	"golang.org/x/oauth2"
)

// testStoreOn returns a Store on a connection of its own under prefix: another replica's.
func testStoreOn(t *testing.T, prefix string) *redisstore.Store {
	return &redisstore.Store{Client: testClient(t), Prefix: prefix}
}

// TestManagerRevokeSlowServer: a revocation that the server answers only after the grant's
// lease (1.5 times the Endpoint's Timeout, measured by Redis) has lapsed. Meanwhile replica b,
// a second Manager on its own connection, needs a token: it gets ErrGrantRevoked without a
// token request, and Redis ends with the revoked mark, which both replicas report.
func TestManagerRevokeSlowServer(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	const key = "tenant-revoked"
	var refreshes atomic.Int64
	var mu sync.Mutex
	var revoked []string
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("%s %s, want POST", r.Method, r.URL.Path)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("%s: %v", r.URL.Path, err)
		}
		switch r.URL.Path {
		case "/token":
			n := refreshes.Add(1)
			if got := r.PostForm.Get("refresh_token"); got != fmt.Sprintf("rt-%d", n-1) {
				t.Errorf("refresh %d sent refresh token %q", n, got)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","refresh_token":"rt-%d","expires_in":3600}`, n, n)
		case "/revoke":
			mu.Lock()
			revoked = append(revoked, r.PostForm.Get("token")+" "+r.PostForm.Get("token_type_hint"))
			mu.Unlock()
			arrived <- struct{}{}
			<-release
		default:
			t.Errorf("request to %s", r.URL.Path)
		}
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", RevocationURL: srv.URL + "/revoke",
		ClientID: "app", ClientSecret: "s3cret", Timeout: 200 * time.Millisecond}
	a := oauth2refresh.NewManager(e, s, nil)
	b := oauth2refresh.NewManager(e, testStoreOn(t, s.Prefix), nil)
	if err := a.Grant(key).SaveToken(ctx, &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a deadline past the lease
		defer cancel()
		done <- a.Grant(key).Revoke(rctx)
	}()
	<-arrived
	// Redis's clock ends the lease: wait for it, as Redis measures it.
	lease := s.Prefix + "{k:" + key + "}:lease"
	for deadline := time.Now().Add(5 * time.Second); s.Client.Exists(ctx, lease).Val() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the lease did not lapse")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := b.Grant(key).Token(); !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
		t.Errorf("b's Token during the revocation: %v, want an error matching ErrGrantRevoked", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Revoke: %v", err)
	}
	if n := refreshes.Load(); n != 0 {
		t.Errorf("%d refreshes, want 0", n)
	}
	for name, m := range map[string]*oauth2refresh.Manager{"a": a, "b": b} {
		if _, err := m.Grant(key).Token(); !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
			t.Errorf("%s's Token after Revoke: %v, want an error matching ErrGrantRevoked", name, err)
		}
	}
	stored, err := s.Load(ctx, key)
	if err != nil || stored == nil || stored.AccessToken != "" || stored.RefreshToken != "" {
		t.Errorf("stored after Revoke: %v, %v; want the revoked mark", stored, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"rt-0 refresh_token"}; fmt.Sprint(revoked) != fmt.Sprint(want) {
		t.Errorf("revocation requests %q, want %q", revoked, want)
	}
}
