package oauth2refresh_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// TestWithStoreUnknownKeysTakeNoLease asks for tokens of keys an attacker chooses, none ever
// stored, through TokenSources that hold no refresh token (none, or an expired access token
// alone) and through a Manager's Grant (Token and Client), over a real filestore.Store: each fails
// with ErrNoRefreshToken, without a token request nor a Store.Lock, and the directory stays
// empty.
func TestWithStoreUnknownKeysTakeNoLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := &faultStore{Store: &filestore.Store{Dir: dir}}
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		respond(w, http.StatusOK, "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":3600}`)
	})
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: testSecret}
	mgr := oauth2refresh.NewManager(e, fs, nil)
	expired := &oauth2.Token{AccessToken: "old", Expiry: time.Now().Add(-time.Hour)}
	const n = 500
	for i := range n {
		key := "attacker-" + strconv.Itoa(i)
		for _, first := range []*oauth2.Token{nil, expired} {
			ts := e.TokenSource(ctx, first, oauth2refresh.WithStore(fs, key))
			if _, err := ts.Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
				t.Fatalf("TokenSource(%v).Token of %q = %v, want ErrNoRefreshToken", first, key, err)
			}
		}
		if _, err := mgr.Grant(key + "-grant").Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
			t.Fatalf("Grant.Token of %q = %v, want ErrNoRefreshToken", key, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example/", nil)
		if resp, err := mgr.Grant(key + "-client").Client(ctx).Do(req); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
			if err == nil {
				resp.Body.Close()
			}
			t.Fatalf("Grant.Client of %q: Do = %v, want ErrNoRefreshToken", key, err)
		}
	}
	if got := fs.locks.Load(); got != 0 {
		t.Errorf("%d Store.Lock calls for unknown keys, want none", got)
	}
	if got := len(srv.requests()); got != 0 {
		t.Errorf("%d token requests for unknown keys, want none", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries[:min(len(entries), 3)] {
		t.Errorf("the FileStore keeps %s (of %d files) for unknown keys", e.Name(), len(entries))
	}
}
