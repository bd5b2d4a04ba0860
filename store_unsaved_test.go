package oauth2refresh_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// appliedStore is a Store whose first fail Saves are applied but reported as failed, as when
// the reply of a remote store is lost or times out after the write.
type appliedStore struct {
	oauth2refresh.Store
	fail int // guarded by the grant's lease: only its holder saves
}

type appliedLease struct {
	oauth2refresh.Lease
	s *appliedStore
}

func (s *appliedStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &appliedLease{l, s}, nil
}

func (l *appliedLease) Save(ctx context.Context, t *oauth2.Token) error {
	err := l.Lease.Save(ctx, t)
	if err == nil && l.s.fail > 0 {
		l.s.fail--
		return errors.New("i/o timeout (reply lost, write applied)")
	}
	return err
}

// TestWithStoreAppliedSaveReportedFailed: process 1's save of at-1/rt-1 lands but reports a
// failure, twice (the prompt retry too). Process 1 keeps the lease and does not hand at-1 out;
// process 2 picks at-1 up from the store without a lease. After the backoff, process 1 saves
// at-1 again on the same lease and serves it. Later refreshes go on from rt-1: nothing is
// overwritten with a stale token, no refresh token is sent twice.
func TestWithStoreAppliedSaveReportedFailed(t *testing.T) {
	rs := newTokenServer(t, "rt-0", 60)
	clk := newFakeClock()
	fs := &filestore.Store{Dir: t.TempDir()}
	ctx := context.Background()
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	p1 := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&appliedStore{Store: fs, fail: 2}, "g"), oauth2refresh.WithClock(clk.now))
	p2 := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clk.now))

	if _, err := p1.Token(); err == nil {
		t.Fatal("process 1: Token succeeded, want the save error")
	}
	if tok, err := p2.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("process 2: Token = %v, %v; want at-1 from the store", tok, err)
	}
	clk.advance(2 * time.Second) // past the backoff, at-1 still valid
	if tok, err := p1.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("process 1 after the backoff: Token = %v, %v; want at-1, saved", tok, err)
	}
	clk.advance(2 * time.Minute)
	if tok, err := p2.Token(); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("process 2: Token = %v, %v; want at-2", tok, err)
	}
	clk.advance(2 * time.Minute)
	tok, err := p1.Token()
	if err != nil || tok.AccessToken != "at-3" {
		t.Fatalf("process 1 after idling: Token = %v, %v; want at-3, refreshed from rt-2", tok, err)
	}
	if rs.isRevoked() {
		t.Error("grant revoked: a rotated-out refresh token was sent again")
	}
	if got := mustLoad(t, fs, "g"); got.AccessToken != "at-3" || got.RefreshToken != "rt-3" {
		t.Errorf("stored %s/%s, want at-3/rt-3", got.AccessToken, got.RefreshToken)
	}
}

// TestWithStoreFailedSaveKeepsLease: a save that fails twice keeps the grant's lease, so that
// another process (here another TokenSource with a filestore.Store of its own, as a process has)
// cannot take the grant and send the spent refresh token; it gets an error until the first
// one saved its token, then picks it up.
func TestWithStoreFailedSaveKeepsLease(t *testing.T) {
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	clk := newFakeClock()
	dir := t.TempDir()
	if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	fs := &faultStore{Store: &filestore.Store{Dir: dir}}
	fs.failSave.Store(2)
	e1 := rs.endpoint()
	p1 := e1.TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clk.now))
	e2 := rs.endpoint()
	e2.Timeout = 100 * time.Millisecond // its wait for the lease: 2 × 1.5 × Timeout
	p2 := e2.TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clk.now))
	if _, err := p1.Token(); !errors.Is(err, errStoreDown) {
		t.Fatalf("process 1: Token = %v, want the save error", err)
	}
	if _, err := p2.Token(); err == nil || !strings.Contains(err.Error(), "locking grant") {
		t.Fatalf("process 2 while process 1 holds an unsaved token: Token = %v, want a lock error", err)
	}
	clk.advance(oauth2refresh.MaxBackoff)
	if tok, err := p1.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("process 1 after the backoff: Token = %v, %v; want at-1", tok, err)
	}
	if tok, err := p2.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("process 2: Token = %v, %v; want at-1 from the store", tok, err)
	}
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if got, want := mustLoad(t, fs, "g").RefreshToken, rs.currentRT(); got != want {
		t.Errorf("stored refresh token %s, want the server's current one, %s", got, want)
	}
	if rs.isRevoked() {
		t.Error("the grant was revoked")
	}
}
