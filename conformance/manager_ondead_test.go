package conformance_test

// OnDead once per process: two races that TestManagerFleet caught now and then, made certain.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// TestManagerOnDeadOnceThroughClient: a request of Grant.Client sent with the grant's token
// before fosite revoked the grant comes back 401 after other requests found the grant dead;
// the Transport returns that 401 without an error, which must not count as the grant alive:
// OnDead is called once.
func TestManagerOnDeadOnceThroughClient(t *testing.T) {
	ctx := context.Background()
	srv := startFosite(t, authserver.Options{AccessTokenLifespan: time.Hour})
	srv.AddClient(authserver.Client{ID: "app", AuthMethod: authserver.None, Scopes: []string{"read"}})
	g, _ := srv.IssueRefreshToken("app", "read")
	store := &filestore.Store{Dir: t.TempDir()}
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app"}
	var mu sync.Mutex
	var dead []string
	m := oauth2refresh.NewManager(e, store, &oauth2refresh.ManagerOptions{OnDead: func(key string, d *oauth2refresh.DeadGrantError) {
		mu.Lock()
		dead = append(dead, deadReason(d))
		mu.Unlock()
	}})
	if err := m.Grant("k").SaveToken(ctx, &oauth2.Token{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	// An API whose first request waits until told.
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	api := httptest.NewServer(srv.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer api.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(inside)
			<-release
		}
		req, _ := http.NewRequest("GET", api.URL, nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	defer slow.Close()
	if _, err := m.Grant("k").Token(); err != nil { // a cached access token
		t.Fatal(err)
	}
	client := m.Grant("k").Client(ctx)
	done := make(chan int)
	go func() { // X: sends with the cached token, held inside the API
		resp, err := client.Get(slow.URL)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-inside
	srv.RevokeGrant(g.ID)
	// Y: the token is refused at the API, the refresh too: the grant is dead.
	for i := 0; i < 3; i++ {
		resp, err := client.Get(slow.URL)
		t.Logf("Y call %d: %v %v", i, resp != nil && resp.StatusCode == 401, err)
		if resp != nil {
			resp.Body.Close()
		}
	}
	close(release)
	t.Logf("X: %d", <-done)
	resp, err := client.Get(slow.URL)
	t.Logf("Z: %v %v", resp != nil, err)
	mu.Lock()
	defer mu.Unlock()
	if len(dead) != 1 {
		t.Errorf("OnDead called %d times: %v", len(dead), dead)
	}
}

// hookStore calls after() once a lease's Save returned.
type hookStore struct {
	oauth2refresh.Store
	after func()
}
type hookLease struct {
	oauth2refresh.Lease
	s *hookStore
}

func (s *hookStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &hookLease{l, s}, nil
}
func (l *hookLease) Save(ctx context.Context, t *oauth2.Token) error {
	err := l.Lease.Save(ctx, t)
	if f := l.s.after; f != nil && err == nil {
		l.s.after = nil
		f()
	}
	return err
}

// TestManagerOnDeadOnceRevoking: a call that finds the revoked mark while Grant.Revoke is
// finishing reports the grant; Revoke must not forget that, and OnDead is called once.
func TestManagerOnDeadOnceRevoking(t *testing.T) {
	ctx := context.Background()
	srv := startFosite(t, authserver.Options{AccessTokenLifespan: time.Hour})
	srv.AddClient(authserver.Client{ID: "app", AuthMethod: authserver.None, Scopes: []string{"read"}})
	g, _ := srv.IssueRefreshToken("app", "read")
	store := &hookStore{Store: &filestore.Store{Dir: t.TempDir()}}
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, RevocationURL: srv.RevocationURL, ClientID: "app"}
	var calls []string
	m := oauth2refresh.NewManager(e, store, &oauth2refresh.ManagerOptions{OnDead: func(key string, d *oauth2refresh.DeadGrantError) {
		calls = append(calls, deadReason(d))
	}})
	if err := m.Grant("k").SaveToken(ctx, &oauth2.Token{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	// Another goroutine of the process asks for a token just as the mark is saved, before
	// Revoke returns (here: on the same goroutine, from the Save).
	store.after = func() {
		_, err := m.Grant("k").Token()
		t.Logf("token during Revoke: %v", err)
	}
	if err := m.Grant("k").Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := m.Grant("k").Token()
	t.Logf("token after Revoke: %v", err)
	if len(calls) != 1 {
		t.Errorf("OnDead called %d times: %v", len(calls), calls)
	}
}
