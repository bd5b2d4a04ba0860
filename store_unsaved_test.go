package oauth2refresh_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// appliedStore is a Store whose first Save is applied but reported as failed, as when the
// reply of a remote store is lost or times out after the write.
type appliedStore struct {
	oauth2refresh.Store
	fail bool // guarded by the grant's lease: only its holder saves
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
	if err == nil && l.s.fail {
		l.s.fail = false
		return errors.New("i/o timeout (reply lost, write applied)")
	}
	return err
}

// TestWithStoreAppliedSaveReportedFailed: process 1's save of at-1/rt-1 lands but reports a
// failure; process 2 picks at-1 up and later refreshes rt-1 to at-2/rt-2; everyone idles until
// at-2 expired too. When process 1 comes back, its unsaved at-1 is stale: it must neither
// overwrite at-2/rt-2 in the store nor send rt-1 again (the server would revoke the grant).
func TestWithStoreAppliedSaveReportedFailed(t *testing.T) {
	rs := newRotServer(t, "rt-0", 60)
	clk := newStoreClock()
	fs := &oauth2refresh.FileStore{Dir: t.TempDir()}
	ctx := context.Background()
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	p1 := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&appliedStore{Store: fs, fail: true}, "g"), oauth2refresh.WithClock(clk.now))
	p2 := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clk.now))

	if _, err := p1.Token(); err == nil {
		t.Fatal("process 1: Token succeeded, want the save error")
	}
	if tok, err := p2.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("process 2: Token = %v, %v; want at-1 from the store", tok, err)
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

// TestWithStoreLeaseLostKeepsNewestRefreshToken: the save of at-1/rt-1 comes after the lease
// lapsed (ErrLeaseLost) and nobody else refreshed meanwhile: the store still holds rt-0, which
// this process spent. Its next refresh must save and use rt-1, not send rt-0 again.
func TestWithStoreLeaseLostKeepsNewestRefreshToken(t *testing.T) {
	ctx := context.Background()
	rs := newRotServer(t, "rt-0", 60)
	clk := newStoreClock()
	fs := &faultStore{Store: &oauth2refresh.FileStore{Dir: t.TempDir()}}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	fs.lostSave.Store(true)
	ts := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clk.now))
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}
	fs.lostSave.Store(false)
	clk.advance(2 * time.Minute)
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("next Token = %v, %v; want at-2, refreshed from rt-1", tok, err)
	}
	if rs.isRevoked() {
		t.Error("grant revoked: rt-0, rotated out by this process itself, was sent again")
	}
	if got := mustLoad(t, fs, "g"); got.RefreshToken != "rt-2" {
		t.Errorf("stored refresh token %s, want rt-2", got.RefreshToken)
	}
}
