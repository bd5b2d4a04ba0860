package mcpauth_test

// The counterparts of the tests: an authorization server of the test's own (testAS), which
// checks every form field and header of every token request, and an MCP server of the SDK
// behind its bearer-token middleware (newMCPServer), which verifies tokens the testAS issued.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

const (
	testClientID    = "mcp-public-client"
	testRedirectURL = "http://127.0.0.1/callback"
)

// testAS is an authorization server for one public client (token_endpoint_auth_method
// "none", PKCE S256) and one resource. It rotates refresh tokens; a refresh token presented a
// second time revokes its grant (every access and refresh token of it); a token request whose
// "resource" is not exactly the one resource is refused with invalid_target, and one with an
// Authorization header (a public client has no credentials) with invalid_client.
type testAS struct {
	t        *testing.T
	srv      *httptest.Server
	resource string        // the one resource (RFC 8707) tokens are issued for
	life     time.Duration // access token lifetime, whole seconds

	mu             sync.Mutex
	nextGrant      int
	codes          map[string]asCode // unused authorization codes
	refresh        map[string]*asRT  // every refresh token issued
	access         map[string]*asAT  // every access token issued
	revoked        map[int]bool      // grants revoked
	refreshes      int               // refresh_token grants answered with new tokens
	authorizations int               // authorization codes exchanged
	reuses         int               // spent refresh tokens presented again
	invalidTarget  int               // requests refused with invalid_target
	basic          map[string]int    // requests with an Authorization header, by grant_type
	spent          []string          // spent refresh tokens, in order
}

type asCode struct{ challenge, redirect string }

type asRT struct {
	grant int
	used  bool
}

type asAT struct {
	grant  int
	expiry time.Time
	used   bool // presented to the MCP server
}

func newTestAS(t *testing.T, resource string, life time.Duration) *testAS {
	as := &testAS{
		t: t, resource: resource, life: life,
		codes: map[string]asCode{}, refresh: map[string]*asRT{}, access: map[string]*asAT{},
		revoked: map[int]bool{}, basic: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", as.metadata)
	mux.HandleFunc("GET /authorize", as.authorize)
	mux.HandleFunc("POST /token", as.token)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *testAS) TokenURL() string { return as.srv.URL + "/token" }

func (as *testAS) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                as.srv.URL,
		"authorization_endpoint":                as.srv.URL + "/authorize",
		"token_endpoint":                        as.TokenURL(),
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

// authorize approves every request that names the client, its redirect URI, the resource and
// a S256 challenge: it redirects with a new code.
func (as *testAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": testClientID, "redirect_uri": testRedirectURL,
		"code_challenge_method": "S256", "resource": as.resource,
	} {
		if got := q[k]; len(got) != 1 || got[0] != want {
			as.t.Errorf("authorize: %s = %q, want %q", k, got, want)
			http.Error(w, "bad "+k, http.StatusBadRequest)
			return
		}
	}
	if q.Get("code_challenge") == "" || q.Get("state") == "" {
		as.t.Errorf("authorize: no code_challenge or state in %v", q)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	as.mu.Lock()
	as.codes[code] = asCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	as.mu.Unlock()
	http.Redirect(w, r, testRedirectURL+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

// token answers the authorization_code and refresh_token grants, checking every field.
func (as *testAS) token(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		as.t.Errorf("token: Content-Type %q", ct)
	}
	if r.URL.RawQuery != "" {
		as.t.Errorf("token: query %q: parameters belong in the body", r.URL.RawQuery)
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	f := r.PostForm
	gt := f.Get("grant_type")
	as.mu.Lock()
	defer as.mu.Unlock()
	if _, _, ok := r.BasicAuth(); ok || r.Header.Get("Authorization") != "" {
		as.basic[gt]++
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	var allowed []string
	switch gt {
	case "authorization_code":
		allowed = []string{"grant_type", "code", "code_verifier", "redirect_uri", "client_id", "resource"}
	case "refresh_token":
		allowed = []string{"grant_type", "refresh_token", "client_id", "resource"}
	default:
		as.t.Errorf("token: grant_type %q", gt)
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	for k, v := range f {
		if !slices.Contains(allowed, k) {
			as.t.Errorf("token: %s request with unexpected field %q", gt, k)
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		if len(v) != 1 && k != "resource" {
			as.t.Errorf("token: field %q sent %d times", k, len(v))
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
	}
	if got := f["client_id"]; len(got) != 1 || got[0] != testClientID {
		as.t.Errorf("token: client_id %q, want %q", got, testClientID)
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if got := f["resource"]; len(got) != 1 || got[0] != as.resource {
		as.invalidTarget++
		oauthError(w, http.StatusBadRequest, "invalid_target")
		return
	}
	var grant int
	switch gt {
	case "authorization_code":
		c, ok := as.codes[f.Get("code")]
		delete(as.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if !ok || c.redirect != f.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			as.t.Errorf("token: bad code, redirect_uri or code_verifier")
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		as.nextGrant++
		grant = as.nextGrant
		as.authorizations++
	case "refresh_token":
		rt := as.refresh[f.Get("refresh_token")]
		switch {
		case rt == nil || as.revoked[rt.grant]:
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		case rt.used:
			as.reuses++
			as.revoked[rt.grant] = true
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		rt.used = true
		as.spent = append(as.spent, f.Get("refresh_token"))
		grant = rt.grant
		as.refreshes++
	}
	at, rt := rand.Text(), rand.Text()
	as.access[at] = &asAT{grant: grant, expiry: time.Now().Add(as.life)}
	as.refresh[rt] = &asRT{grant: grant}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "refresh_token": rt,
		"expires_in": int(as.life / time.Second),
	})
}

// verify is the MCP server's auth.TokenVerifier: a token the testAS issued for a grant not
// revoked.
func (as *testAS) verify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	at := as.access[token]
	if at == nil || as.revoked[at.grant] {
		return nil, fmt.Errorf("unknown or revoked token: %w", auth.ErrInvalidToken)
	}
	at.used = true
	return &auth.TokenInfo{Expiration: at.expiry, Extra: map[string]any{"grant": at.grant}}, nil
}

// asStats is what the testAS counted.
type asStats struct {
	Refreshes, Authorizations, Reuses, InvalidTarget int
	Basic                                            map[string]int
	AccessIssued, AccessUsed                         int
}

func (as *testAS) stats() asStats {
	as.mu.Lock()
	defer as.mu.Unlock()
	s := asStats{Refreshes: as.refreshes, Authorizations: as.authorizations, Reuses: as.reuses,
		InvalidTarget: as.invalidTarget, Basic: map[string]int{}}
	for k, v := range as.basic {
		s.Basic[k] = v
	}
	for _, at := range as.access {
		s.AccessIssued++
		if at.used {
			s.AccessUsed++
		}
	}
	return s
}

// issue makes a new grant, as an authorization would, and returns its token with the access
// token already expired.
func (as *testAS) issue() *oauth2.Token {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.nextGrant++
	at, rt := rand.Text(), rand.Text()
	as.access[at] = &asAT{grant: as.nextGrant, expiry: time.Now().Add(-time.Second), used: true}
	as.refresh[rt] = &asRT{grant: as.nextGrant}
	return &oauth2.Token{AccessToken: at, TokenType: "Bearer", RefreshToken: rt, Expiry: time.Now().Add(-time.Second)}
}

// revoke revokes the grant of refresh token rt.
func (as *testAS) revoke(rt string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.revoked[as.refresh[rt].grant] = true
}

// grantOf returns the grant of access token at, 0 if the testAS did not issue it.
func (as *testAS) grantOf(at string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	if a := as.access[at]; a != nil {
		return a.grant
	}
	return 0
}

// spentToken returns a refresh token the client already spent.
func (as *testAS) spentToken() string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.spent) == 0 {
		as.t.Fatal("no spent refresh token yet")
	}
	return as.spent[0]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

// newMCPServer starts an MCP server of the SDK whose /mcp endpoint sits behind the SDK's
// bearer-token middleware with verify, and which serves its protected resource metadata
// naming asURL. It has one tool, "whoami", which answers the grant number of the token.
// resource is the server's URI: its URL followed by /mcp.
func newMCPServer(t *testing.T) (srv *httptest.Server, resource string, setAS func(asURL string, verify auth.TokenVerifier)) {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-test", Version: "v0.0.1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "the grant of the caller's token"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
			ti := req.Extra.TokenInfo
			if ti == nil {
				return nil, whoami{}, errors.New("no token info")
			}
			return nil, whoami{Grant: ti.Extra["grant"].(int)}, nil
		})
	var (
		mu       sync.Mutex
		asURL    string
		verifier auth.TokenVerifier
	)
	mux := http.NewServeMux()
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resource = srv.URL + "/mcp"
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		u := asURL
		mu.Unlock()
		auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
			Resource: resource, AuthorizationServers: []string{u},
		}).ServeHTTP(w, r)
	})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	verify := func(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
		mu.Lock()
		v := verifier
		mu.Unlock()
		return v(ctx, token, r)
	}
	mux.Handle("/mcp", auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: srv.URL + "/.well-known/oauth-protected-resource/mcp",
	})(handler))
	return srv, resource, func(u string, v auth.TokenVerifier) {
		mu.Lock()
		asURL, verifier = u, v
		mu.Unlock()
	}
}

type whoami struct {
	Grant int `json:"grant"`
}

// fetcher is an auth.AuthorizationCodeFetcher that approves at the testAS's authorization
// endpoint as a user would, and counts its calls in *n.
func fetcher(n *int, mu *sync.Mutex) auth.AuthorizationCodeFetcher {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		mu.Lock()
		*n++
		mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), testRedirectURL) {
			return nil, fmt.Errorf("authorization refused: HTTP %d", resp.StatusCode)
		}
		return &auth.AuthorizationResult{Code: loc.Query().Get("code"), State: loc.Query().Get("state")}, nil
	}
}

// noFetch is an auth.AuthorizationCodeFetcher for a client that must not authorize.
func noFetch(context.Context, *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	return nil, errors.New("the client asked the user to authorize again")
}

// connect connects an SDK client to the MCP server at resource through the
// AuthorizationCodeHandler of hc.
func connect(ctx context.Context, resource string, hc *auth.AuthorizationCodeHandlerConfig) (*mcp.ClientSession, *auth.AuthorizationCodeHandler, error) {
	hc.PreregisteredClient = &oauthex.ClientCredentials{ClientID: testClientID}
	hc.RedirectURL = testRedirectURL
	h, err := auth.NewAuthorizationCodeHandler(hc)
	if err != nil {
		return nil, nil, err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpauth-test-client", Version: "v0.0.1"}, nil)
	s, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: resource, OAuthHandler: h, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	return s, h, err
}

// callWhoami calls the whoami tool and returns the grant number it answered.
func callWhoami(ctx context.Context, s *mcp.ClientSession) (int, error) {
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		return 0, err
	}
	if res.IsError || len(res.Content) != 1 {
		return 0, fmt.Errorf("tool error: %+v", res.Content)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return 0, fmt.Errorf("tool answered %T", res.Content[0])
	}
	var w whoami
	if err := json.Unmarshal([]byte(text.Text), &w); err != nil {
		return 0, err
	}
	return w.Grant, nil
}

// callFor calls whoami every interval for d and returns how many calls there were, and the
// errors and grants of those that failed or answered another grant than want.
func callFor(ctx context.Context, s *mcp.ClientSession, d, interval time.Duration, want int) (calls int, errs []string) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		calls++
		g, err := callWhoami(ctx, s)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case g != want:
			errs = append(errs, fmt.Sprintf("call answered grant %d, want %d", g, want))
		}
		time.Sleep(interval)
	}
	return calls, errs
}
