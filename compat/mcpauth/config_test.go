package mcpauth_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/mcpauth"
)

// TestResourceOnRefresh checks what a refresh sends for the Resource: exactly one "resource"
// field, the canonical form of Resource (scheme and host in lower case), whatever
// Endpoint.Params holds; and a public client's client_id in the body with no Authorization
// header, whether the SDK's oauth2.Config says AutoDetect, InParams or InHeader (the testAS
// refuses anything else).
func TestResourceOnRefresh(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		as := newTestAS(t, "https://mcp.example.com/mcp", tokenLife)
		c := &mcpauth.Config{
			Resource: "HTTPS://MCP.Example.COM/mcp",
			Endpoint: oauth2refresh.Endpoint{Params: url.Values{"resource": {"https://other.example", "x"}, "audience": nil}},
		}
		cfg := &oauth2.Config{ClientID: testClientID, Endpoint: oauth2.Endpoint{TokenURL: as.TokenURL(), AuthStyle: style}}
		ts, err := c.NewTokenSource(context.Background(), cfg, as.issue())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(); err != nil {
			t.Errorf("AuthStyle %v: refresh: %v", style, err)
		}
		if st := as.stats(); st.Refreshes != 1 || st.InvalidTarget != 0 || len(st.Basic) != 0 {
			t.Errorf("AuthStyle %v: server saw %+v, want one refresh, no invalid_target, no Basic", style, st)
		}
	}
}

// TestDeadGrantReadsInvalidGrant checks that the error of a dead grant is one the SDK's
// transport answers by authorizing again (an invalid_grant *oauth2.RetrieveError) and one a
// program recognizes (oauth2refresh.ErrInvalidGrant), both for the process the server refused
// and for another process sharing the grant, which finds the dead mark in the Store and sends
// nothing: oauth2refresh's error says invalid_grant as a RetrieveError in the first case only.
func TestDeadGrantReadsInvalidGrant(t *testing.T) {
	ctx := context.Background()
	as := newTestAS(t, "https://mcp.example.com/mcp", tokenLife)
	c := grantConfig("https://mcp.example.com/mcp", as.TokenURL(), t.TempDir())
	tok := as.issue()
	if err := oauth2refresh.SaveToken(ctx, c.Store, "https://mcp.example.com/mcp", tok); err != nil {
		t.Fatal(err)
	}
	refused, err := c.InitialTokenSource(ctx)
	if err != nil || refused == nil {
		t.Fatalf("InitialTokenSource = %v, %v", refused, err)
	}
	other, err := c.InitialTokenSource(ctx)
	if err != nil || other == nil {
		t.Fatalf("InitialTokenSource = %v, %v", other, err)
	}
	as.revoke(tok.RefreshToken)
	for _, tc := range []struct {
		name string
		ts   oauth2.TokenSource
	}{{"refused by the server", refused}, {"found dead in the store", other}} {
		_, err := tc.ts.Token()
		var re *oauth2.RetrieveError
		if !errors.Is(err, oauth2refresh.ErrInvalidGrant) || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("%s: Token: %v; want an error matching ErrInvalidGrant and an invalid_grant *oauth2.RetrieveError", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), tok.RefreshToken) {
			t.Errorf("%s: the error holds the refresh token", tc.name)
		}
	}
	if n := as.stats().Refreshes; n != 0 {
		t.Errorf("%d refreshes answered, want 0", n)
	}
	if ts, err := c.InitialTokenSource(ctx); err != nil || ts != nil {
		t.Errorf("InitialTokenSource of the dead grant = %v, %v; want nil, nil", ts, err)
	}
}

// TestConfigErrors checks the Configs that cannot work: each is refused before any request.
func TestConfigErrors(t *testing.T) {
	const tokenURL = "https://as.example.com/token"
	cfg := &oauth2.Config{ClientID: testClientID, Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}
	tok := &oauth2.Token{AccessToken: "at", RefreshToken: "rt"}
	ep := oauth2refresh.Endpoint{TokenURL: tokenURL, ClientID: testClientID}
	tests := []struct {
		name    string
		c       mcpauth.Config
		initial bool // call InitialTokenSource, not NewTokenSource
		want    string
	}{
		{"no resource", mcpauth.Config{}, false, "Resource (the MCP server's URI) is empty"},
		{"relative resource", mcpauth.Config{Resource: "/mcp"}, false, "is not an absolute URI"},
		{"fragment", mcpauth.Config{Resource: "https://mcp.example.com/mcp#x"}, false, "has a fragment"},
		{"empty fragment", mcpauth.Config{Resource: "https://mcp.example.com/mcp#"}, false, "has a fragment"},
		{"other token URL", mcpauth.Config{Resource: "https://mcp.example.com/mcp", Endpoint: oauth2refresh.Endpoint{TokenURL: "https://evil.example/token"}}, false, "is not Endpoint.TokenURL"},
		{"other client", mcpauth.Config{Resource: "https://mcp.example.com/mcp", Endpoint: oauth2refresh.Endpoint{ClientID: "other"}}, false, "is not Endpoint.ClientID"},
		{"initial without endpoint", mcpauth.Config{Resource: "https://mcp.example.com/mcp"}, true, "needs Endpoint.TokenURL and Endpoint.ClientID"},
		{"initial without resource", mcpauth.Config{Endpoint: ep}, true, "Resource (the MCP server's URI) is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ts oauth2.TokenSource
			var err error
			if tc.initial {
				ts, err = tc.c.InitialTokenSource(context.Background())
			} else {
				ts, err = tc.c.NewTokenSource(context.Background(), cfg, tok)
			}
			if ts != nil || err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: mcp token source: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, %v; want nil and an error saying %q", ts, err, tc.want)
			}
		})
	}
}

// failingStore is a Store whose first fails Locks fail.
type failingStore struct {
	oauth2refresh.Store
	mu    sync.Mutex
	fails int
}

func (s *failingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	s.mu.Lock()
	fail := s.fails > 0
	s.fails--
	s.mu.Unlock()
	if fail {
		return nil, errors.New("store unreachable")
	}
	return s.Store.Lock(ctx, key, ttl)
}

// TestNewTokenSourceStoreFails checks that the token of a code exchange is saved when the
// store fails once, and that a store that keeps failing is a clear error that holds no token.
func TestNewTokenSourceStoreFails(t *testing.T) {
	for _, fails := range []int{1, 2} {
		ctx := context.Background()
		as := newTestAS(t, "https://mcp.example.com/mcp", tokenLife)
		c := grantConfig("https://mcp.example.com/mcp", as.TokenURL(), t.TempDir())
		c.Store = &failingStore{Store: c.Store, fails: fails}
		cfg := &oauth2.Config{ClientID: testClientID, Endpoint: oauth2.Endpoint{TokenURL: as.TokenURL()}}
		tok := as.issue()
		ts, err := c.NewTokenSource(ctx, cfg, tok)
		if fails == 2 {
			if ts != nil || err == nil || !strings.Contains(err.Error(), "saving the new grant") || strings.Contains(err.Error(), tok.RefreshToken) {
				t.Errorf("store failing twice: %v, %v; want nil and an error without the token", ts, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("store failing once: %v", err)
		}
		stored, err := c.Store.Load(ctx, c.Resource)
		if err != nil || stored == nil || stored.RefreshToken != tok.RefreshToken {
			t.Errorf("store failing once: stored %v, %v; want the exchange's token", stored != nil, err)
		}
	}
}
