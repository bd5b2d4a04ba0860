package mcpauth_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/mcpauth"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// Access tokens live 1 s; the clients serve them until 400 ms before they expire and refresh
// then, on the call that needs the token (no early refresh), so that the authorization server
// sees exactly one refresh per token lifetime the calls span.
const (
	tokenLife    = time.Second
	tokenMargin  = 400 * time.Millisecond
	callInterval = 40 * time.Millisecond
)

func grantConfig(resource, tokenURL, dir string) *mcpauth.Config {
	return &mcpauth.Config{
		Resource: resource,
		Endpoint: oauth2refresh.Endpoint{TokenURL: tokenURL, ClientID: testClientID},
		Store:    &filestore.Store{Dir: dir},
		Options: []oauth2refresh.Option{
			oauth2refresh.ExpiryMargin(tokenMargin), oauth2refresh.EarlyRefresh(0),
		},
	}
}

// checkRefreshes checks that the testAS's refreshes since before (a stats snapshot) are one
// per token lifetime of a run of d: at least one per full lifetime, at most one per servable
// lifetime (and one more for the token the run began with), and that every access token issued
// was used.
func checkRefreshes(t *testing.T, as *testAS, before asStats, d time.Duration) {
	t.Helper()
	st := as.stats()
	n := st.Refreshes - before.Refreshes
	t.Logf("%d refreshes in %v; server: %+v", n, d.Round(time.Millisecond), st)
	lo := int(d/tokenLife) - 1
	hi := int(math.Ceil(float64(d)/float64(tokenLife-tokenMargin))) + 1
	if n < lo || n > hi {
		t.Errorf("%d refreshes in %v, want between %d and %d (one per token lifetime)", n, d, lo, hi)
	}
	if st.AccessUsed != st.AccessIssued {
		t.Errorf("%d access tokens issued, %d used: some refresh was not needed", st.AccessIssued, st.AccessUsed)
	}
}

// TestMCPClient runs the SDK's MCP client, its tokens from a Config, against the SDK's MCP
// server behind its bearer-token middleware and the testAS (rotation, reuse detection,
// resource checks): across several access token lifetimes, across a restart through
// InitialTokenSource, from two OS processes sharing the filestore.Store, and through a grant that
// dies (a spent refresh token replayed) and is authorized again.
func TestMCPClient(t *testing.T) {
	ctx := context.Background()
	_, resource, setAS := newMCPServer(t)
	as := newTestAS(t, resource, tokenLife)
	setAS(as.srv.URL, as.verify)
	dir := t.TempDir()
	var fetchMu sync.Mutex
	fetches := 0

	// The first start: nothing stored, the SDK authorizes, then the calls span 3 lifetimes.
	grant := grantConfig(resource, as.TokenURL(), dir)
	initial, err := grant.InitialTokenSource(ctx)
	if err != nil || initial != nil {
		t.Fatalf("InitialTokenSource with nothing stored = %v, %v; want nil, nil", initial, err)
	}
	s, _, err := connect(ctx, resource, &auth.AuthorizationCodeHandlerConfig{
		AuthorizationCodeFetcher: fetcher(&fetches, &fetchMu),
		NewTokenSource:           grant.NewTokenSource,
	})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	before := as.stats()
	start := time.Now()
	calls, errs := callFor(ctx, s, 3*tokenLife+tokenLife/2, callInterval, 1)
	checkRefreshes(t, as, before, time.Since(start))
	if len(errs) != 0 {
		t.Errorf("%d of %d calls failed: %q", len(errs), calls, errs)
	}
	s.Close()

	// A restart: a new Config and handler resume the stored grant; nobody authorizes.
	restarted := grantConfig(resource, as.TokenURL(), dir)
	initial, err = restarted.InitialTokenSource(ctx)
	if err != nil || initial == nil {
		t.Fatalf("InitialTokenSource after the first run = %v, %v; want a source", initial, err)
	}
	s, h, err := connect(ctx, resource, &auth.AuthorizationCodeHandlerConfig{
		AuthorizationCodeFetcher: fetcher(&fetches, &fetchMu),
		NewTokenSource:           restarted.NewTokenSource,
		InitialTokenSource:       initial,
	})
	if err != nil {
		t.Fatalf("connect after the restart: %v", err)
	}
	before, start = as.stats(), time.Now()
	calls, errs = callFor(ctx, s, 2*tokenLife, callInterval, 1)
	checkRefreshes(t, as, before, time.Since(start))
	if len(errs) != 0 {
		t.Errorf("after the restart, %d of %d calls failed: %q", len(errs), calls, errs)
	}

	// Two OS processes at once, sharing the grant through the filestore.Store.
	// Both call for the same 3 lifetimes: had each refreshed on its own, the server would
	// see twice the refreshes, and a spent refresh token come back.
	before = as.stats()
	results := runChildren(t, ctx, 2, childConfig{
		Resource: resource, TokenURL: as.TokenURL(), Dir: dir, Duration: 3 * tokenLife,
	})
	first, last := results[0].Start, results[0].End
	for i, r := range results {
		if r.Calls < 10 || len(r.Errors) != 0 {
			t.Errorf("process %d: %d calls, failures %q", i, r.Calls, r.Errors)
		}
		if r.Start.Before(first) {
			first = r.Start
		}
		if r.End.After(last) {
			last = r.End
		}
	}
	checkRefreshes(t, as, before, last.Sub(first))

	st := as.stats()
	want := struct{ Authorizations, Reuses, InvalidTarget, BasicOnRefresh int }{Authorizations: 1}
	got := struct{ Authorizations, Reuses, InvalidTarget, BasicOnRefresh int }{
		st.Authorizations, st.Reuses, st.InvalidTarget, st.Basic["refresh_token"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the authorization server saw (-want +got):\n%s", diff)
	}

	// The grant dies: a spent refresh token comes back (from an attacker), the server revokes
	// the grant. Once the token held expires, the source's error says invalid_grant both to
	// the program and to the SDK, nothing is left to resume, and the next call authorizes again.
	replay(t, as, resource, as.spentToken())
	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = pollError(ts, 3*tokenLife)
	var re *oauth2.RetrieveError
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("Token of a revoked grant: %v; want an error matching ErrInvalidGrant and an invalid_grant *oauth2.RetrieveError", err)
	}
	if initial, err := restarted.InitialTokenSource(ctx); err != nil || initial != nil {
		t.Errorf("InitialTokenSource of a dead grant = %v, %v; want nil, nil", initial, err)
	}
	if g, err := callWhoami(ctx, s); err != nil || g != 2 {
		t.Errorf("call after the grant died = grant %d, %v; want grant 2 (authorized again)", g, err)
	}
	s.Close()
	fetchMu.Lock()
	if fetches != 2 {
		t.Errorf("the user was asked to authorize %d times, want 2", fetches)
	}
	fetchMu.Unlock()
	if initial, err := restarted.InitialTokenSource(ctx); err != nil || initial == nil {
		t.Errorf("InitialTokenSource after the new authorization = %v, %v; want a source", initial, err)
	} else if tok, err := initial.Token(); err != nil || as.grantOf(tok.AccessToken) != 2 {
		t.Errorf("the new authorization's grant was not stored: %v", err)
	}
}

// replay sends refresh token rt to the testAS as an attacker would, with every field right.
func replay(t *testing.T, as *testAS, resource, rt string) {
	t.Helper()
	e := &oauth2refresh.Endpoint{TokenURL: as.TokenURL(), ClientID: testClientID, AuthMethod: oauth2refresh.AuthNone,
		Params: map[string][]string{"resource": {resource}}}
	_, err := e.Refresh(context.Background(), rt)
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Fatalf("replaying a spent refresh token: %v, want invalid_grant", err)
	}
	if n := as.stats().Reuses; n != 1 {
		t.Fatalf("the server saw %d reused refresh tokens, want 1", n)
	}
}

// pollError calls ts.Token until it fails, for at most d, and returns the error.
func pollError(ts oauth2.TokenSource, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if _, err := ts.Token(); err != nil {
			return err
		}
		time.Sleep(callInterval)
	}
	return nil
}

// childConfig is the configuration of a client process (see childMain).
type childConfig struct {
	Resource, TokenURL, Dir string
	Duration                time.Duration
}

// childResult is what a client process reports on stdout, as one JSON line.
type childResult struct {
	Calls      int
	Errors     []string
	Start, End time.Time // when the first call began and the last ended
}

const childEnv = "MCPAUTH_TEST_CHILD"

func init() {
	v := os.Getenv(childEnv)
	if v == "" {
		return
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad config:", err)
		os.Exit(3)
	}
	r, err := childMain(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// childMain is a client process: it resumes the stored grant and calls whoami for
// cfg.Duration. It must not authorize.
func childMain(cfg childConfig) (*childResult, error) {
	ctx := context.Background()
	grant := grantConfig(cfg.Resource, cfg.TokenURL, cfg.Dir)
	initial, err := grant.InitialTokenSource(ctx)
	if err != nil || initial == nil {
		return nil, fmt.Errorf("InitialTokenSource = %v, %v; want a source", initial, err)
	}
	s, _, err := connect(ctx, cfg.Resource, &auth.AuthorizationCodeHandlerConfig{
		AuthorizationCodeFetcher: noFetch,
		NewTokenSource:           grant.NewTokenSource,
		InitialTokenSource:       initial,
	})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer s.Close()
	start := time.Now()
	calls, errs := callFor(ctx, s, cfg.Duration, callInterval, 1)
	return &childResult{Calls: calls, Errors: errs, Start: start, End: time.Now()}, nil
}

// runChildren runs n client processes at once (this test binary again, with cfg in childEnv)
// and returns their results.
func runChildren(t *testing.T, ctx context.Context, n int, cfg childConfig) []childResult {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]childResult, n)
	var wg sync.WaitGroup
	for i := range n {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(b))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			if sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &results[i]); err != nil {
					t.Errorf("process %d: %v", i, err)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("process %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return results
}

// TestSideBySide runs one scenario, connect and call for 2.5 s, through the refresh path of
// a Config and through the SDK's default path (golang.org/x/oauth2's Config.TokenSource)
// against the same servers. The default path sends no resource on refresh: the authorization
// server refuses with invalid_target and the session dies at its first refresh. With 1 s
// tokens that is at once (x/oauth2 refreshes 10 s before expiry, so right after the code
// exchange, and the SDK's Authorize fails); with 11 s tokens, after 1 s of working calls.
func TestSideBySide(t *testing.T) {
	tests := []struct {
		name     string
		life     time.Duration
		default_ bool // the SDK's default path: no NewTokenSource
	}{
		{name: "mcpauth", life: tokenLife},
		{name: "sdk default, 1s tokens", life: time.Second, default_: true},
		{name: "sdk default, 11s tokens", life: 11 * time.Second, default_: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, resource, setAS := newMCPServer(t)
			as := newTestAS(t, resource, tc.life)
			setAS(as.srv.URL, as.verify)
			var mu sync.Mutex
			fetches := 0
			hc := &auth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: fetcher(&fetches, &mu)}
			if !tc.default_ {
				hc.NewTokenSource = grantConfig(resource, as.TokenURL(), t.TempDir()).NewTokenSource
			}
			var errs []string
			calls := 0
			s, _, err := connect(ctx, resource, hc)
			if err != nil {
				errs = append(errs, err.Error())
			} else {
				calls, errs = callFor(ctx, s, 2*tokenLife+tokenLife/2, callInterval, 1)
				s.Close()
			}
			st := as.stats()
			t.Logf("%d calls, %d failed; server: %+v", calls, len(errs), st)
			if st.Reuses != 0 || st.Authorizations != 1 {
				t.Errorf("server saw %d reused refresh tokens and %d authorizations, want 0 and 1", st.Reuses, st.Authorizations)
			}
			if !tc.default_ {
				if len(errs) != 0 || st.InvalidTarget != 0 || st.Refreshes < 2 || st.Basic["refresh_token"] != 0 {
					t.Errorf("failures %q; server: %+v; want no failure, no invalid_target, no Basic on refresh, at least 2 refreshes", errs, st)
				}
				return
			}
			// The default path: every refresh is refused for its missing resource, the
			// session fails, and nothing was refreshed.
			if len(errs) == 0 || st.InvalidTarget == 0 || st.Refreshes != 0 {
				t.Errorf("failures %q; server: %+v; want failures, invalid_target refusals, no refresh", errs, st)
			}
			for _, e := range errs {
				if !strings.Contains(e, `"invalid_target"`) {
					t.Errorf("failure %q does not say invalid_target", e)
				}
			}
		})
	}
}
