package oauth2refresh_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// timingStore wraps a Store and records when its lease was granted and the deadline of the
// context of the lease's Save.
type timingStore struct {
	oauth2refresh.Store

	mu       sync.Mutex
	ttl      time.Duration // ttl of the last Lock; guarded by mu
	locked   time.Time     // when the last Lock returned; guarded by mu
	tokenAt  time.Time     // when Lease.Token was last called; guarded by mu
	deadline time.Time     // deadline of the last Save's context, zero if none; guarded by mu
	saves    int           // guarded by mu
}

func (s *timingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl, s.locked = ttl, time.Now()
	return &timingLease{Lease: l, s: s}, nil
}

type timingLease struct {
	oauth2refresh.Lease
	s *timingStore
}

func (l *timingLease) Token() *oauth2.Token {
	l.s.mu.Lock()
	l.s.tokenAt = time.Now()
	l.s.mu.Unlock()
	return l.Lease.Token()
}

func (l *timingLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.mu.Lock()
	l.s.deadline, _ = ctx.Deadline()
	l.s.saves++
	l.s.mu.Unlock()
	return l.Lease.Save(ctx, t)
}

func TestWithStoreSaveBoundedByLease(t *testing.T) {
	// The token request may run until the Timeout after the lease was granted; the save of
	// its result must then end with the lease (granted + 1.5 × Timeout), not get a Timeout
	// of its own.
	const timeout = time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		if r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "rt-0" {
			t.Errorf("request %s %v, want POST grant_type=refresh_token refresh_token=rt-0", r.Method, r.PostForm)
		}
		// A slow server: well into the Timeout, well before its end.
		time.Sleep(6 * timeout / 10)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	s := &timingStore{Store: &filestore.Store{Dir: t.TempDir()}}
	if err := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret", Timeout: timeout}
	ts := e.TokenSource(ctx, nil, oauth2refresh.WithStore(s, "g"))
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saves != 2 { // SaveToken's and the refresh's
		t.Fatalf("%d saves, want 2", s.saves)
	}
	if want := timeout + timeout/2; s.ttl != want {
		t.Errorf("lease ttl = %v, want %v", s.ttl, want)
	}
	// The TokenSource takes the lease's end from the time Lock returned, before it looks at
	// the Lease's token: the deadline lies between these two times plus the ttl. Without the
	// bound it would be the save's start plus the Timeout, at least 0.6 s + 1 s after the
	// lease was granted, 0.1 s past its end.
	if s.deadline.IsZero() {
		t.Fatalf("the save's context has no deadline")
	}
	if early, late := s.locked.Add(s.ttl), s.tokenAt.Add(s.ttl); s.deadline.Before(early) || s.deadline.After(late) {
		t.Errorf("save deadline %v after the lease was granted, want the lease's end (%v to %v)",
			s.deadline.Sub(s.locked), early.Sub(s.locked), late.Sub(s.locked))
	}
	if got := mustLoad(t, s, "g"); got == nil || got.RefreshToken != "rt-1" {
		t.Errorf("stored %v, want rt-1", got)
	}
}
