package authserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// These tests speak raw HTTP to the server, so that they prove the server's behaviour
// independently of the client under test.

func start(t *testing.T, opts authserver.Options) *authserver.Server {
	t.Helper()
	srv, err := authserver.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func addClient(t *testing.T, srv *authserver.Server, c authserver.Client) {
	t.Helper()
	if err := srv.AddClient(c); err != nil {
		t.Fatal(err)
	}
}

func issue(t *testing.T, srv *authserver.Server, clientID string, scopes ...string) authserver.Grant {
	t.Helper()
	g, err := srv.IssueRefreshToken(clientID, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// post sends a token request with form and, if user is not empty, HTTP Basic credentials
// (each form-encoded first, RFC 6749 §2.3.1). It returns the status and decoded JSON body.
func post(t *testing.T, tokenURL string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decoding token response (HTTP %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

// callAPI calls srv.APIURL with an access token and returns the status, the
// WWW-Authenticate header and the TokenInfo of a 200 answer.
func callAPI(t *testing.T, srv *authserver.Server, accessToken string) (int, string, authserver.TokenInfo) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.APIURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ti authserver.TokenInfo
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&ti); err != nil {
			t.Fatal(err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), ti
}

func TestRotationAndReuseDetection(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s3cret", AuthMethod: authserver.ClientSecretBasic,
		Scopes: []string{"read", "write"}})
	g := issue(t, srv, "app", "read")

	status, body := post(t, srv.TokenURL, refreshForm(g.RefreshToken), "app", "s3cret")
	if status != http.StatusOK {
		t.Fatalf("first refresh: HTTP %d %v", status, body)
	}
	rt1, _ := body["refresh_token"].(string)
	at1, _ := body["access_token"].(string)
	if rt1 == "" || rt1 == g.RefreshToken || at1 == "" {
		t.Fatalf("first refresh did not rotate: %v", body)
	}
	if diff := cmp.Diff(map[string]any{"token_type": "bearer", "scope": "read", "expires_in": float64(3599)},
		body, cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return k == "access_token" || k == "refresh_token" }),
		cmpopts.EquateApprox(0, 1)); diff != "" {
		t.Errorf("token response (-want +got):\n%s", diff)
	}

	status, _, ti := callAPI(t, srv, at1)
	if status != http.StatusOK {
		t.Fatalf("API with the new access token: HTTP %d", status)
	}
	if diff := cmp.Diff(authserver.TokenInfo{GrantID: g.ID, ClientID: "app", Subject: g.Subject, Scopes: []string{"read"}},
		ti, cmpopts.IgnoreFields(authserver.TokenInfo{}, "ExpiresAt")); diff != "" {
		t.Errorf("TokenInfo (-want +got):\n%s", diff)
	}
	if revoked, err := srv.Revoked(g.ID); err != nil || revoked {
		t.Fatalf("Revoked after a rotation = %v, %v; want false", revoked, err)
	}

	// The rotated-out token comes back: invalid_grant, and the whole family dies.
	status, body = post(t, srv.TokenURL, refreshForm(g.RefreshToken), "app", "s3cret")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: HTTP %d %v; want 400 invalid_grant", status, body)
	}
	if revoked, err := srv.Revoked(g.ID); err != nil || !revoked {
		t.Fatalf("Revoked after reuse = %v, %v; want true", revoked, err)
	}
	status, body = post(t, srv.TokenURL, refreshForm(rt1), "app", "s3cret")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("newest refresh token after reuse: HTTP %d %v; want 400 invalid_grant", status, body)
	}
	status, wwwAuth, _ := callAPI(t, srv, at1)
	if status != http.StatusUnauthorized || !strings.Contains(wwwAuth, `error="invalid_token"`) {
		t.Fatalf("API with the newest access token after reuse: HTTP %d %q; want 401 invalid_token", status, wwwAuth)
	}

	want := authserver.Stats{TokenRequests: 3, TokensIssued: 1, TokenErrors: 2, ReuseDetected: 2, APIRequests: 2, APIRejected: 1}
	if diff := cmp.Diff(want, srv.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestClientAuthentication(t *testing.T) {
	srv := start(t, authserver.Options{})
	const odd = "a/b+c&d=é%20 ü"
	addClient(t, srv, authserver.Client{ID: "basic", Secret: odd, AuthMethod: authserver.ClientSecretBasic})
	addClient(t, srv, authserver.Client{ID: "post", Secret: odd, AuthMethod: authserver.ClientSecretPost})
	addClient(t, srv, authserver.Client{ID: "any", Secret: odd})
	addClient(t, srv, authserver.Client{ID: "public", AuthMethod: authserver.None})

	tests := []struct {
		name       string
		client     string
		how        string // "basic", "post", "none"
		secret     string
		wantStatus int
		wantError  string
	}{
		{"basic client with basic", "basic", "basic", odd, 200, ""},
		{"basic client with post", "basic", "post", odd, 401, "invalid_client"},
		{"basic client with wrong secret", "basic", "basic", odd + "x", 401, "invalid_client"},
		{"post client with post", "post", "post", odd, 200, ""},
		{"post client with basic", "post", "basic", odd, 401, "invalid_client"},
		{"post client with wrong secret", "post", "post", "nope", 401, "invalid_client"},
		{"any client with basic", "any", "basic", odd, 200, ""},
		{"any client with post", "any", "post", odd, 200, ""},
		{"any client without secret", "any", "none", "", 401, "invalid_client"},
		{"public client with none", "public", "none", "", 200, ""},
		{"unknown client", "nobody", "basic", odd, 401, "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cid := tc.client
			if cid == "nobody" {
				cid = "any"
			}
			g := issue(t, srv, cid)
			form := refreshForm(g.RefreshToken)
			var user, pass string
			switch tc.how {
			case "basic":
				user, pass = tc.client, tc.secret
			case "post":
				form.Set("client_id", tc.client)
				form.Set("client_secret", tc.secret)
			case "none":
				form.Set("client_id", tc.client)
			}
			status, body := post(t, srv.TokenURL, form, user, pass)
			if status != tc.wantStatus || (tc.wantError != "" && body["error"] != tc.wantError) {
				t.Fatalf("HTTP %d %v; want %d %q", status, body["error"], tc.wantStatus, tc.wantError)
			}
			// A rejected client does not spend the refresh token.
			if revoked, err := srv.Revoked(g.ID); err != nil || revoked {
				t.Errorf("Revoked = %v, %v; want false", revoked, err)
			}
		})
	}
}

func TestRefreshTokenBelongsToItsClient(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "a", Secret: "sa"})
	addClient(t, srv, authserver.Client{ID: "b", Secret: "sb"})
	g := issue(t, srv, "a")
	status, body := post(t, srv.TokenURL, refreshForm(g.RefreshToken), "b", "sb")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("HTTP %d %v; want 400 invalid_grant", status, body)
	}
}

func TestScopesOnRefresh(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s", Scopes: []string{"read", "write", "admin"}})
	g := issue(t, srv, "app", "read", "write")
	form := refreshForm(g.RefreshToken)
	form.Set("scope", "read") // fosite ignores narrowing and answers the grant's scopes
	status, body := post(t, srv.TokenURL, form, "app", "s")
	if status != http.StatusOK || body["scope"] != "read write" {
		t.Fatalf("HTTP %d scope %q; want 200 \"read write\"", status, body["scope"])
	}
}

func TestRevokeGrant(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "app", AuthMethod: authserver.None})
	g := issue(t, srv, "app")
	form := refreshForm(g.RefreshToken)
	form.Set("client_id", "app")
	status, body := post(t, srv.TokenURL, form, "", "")
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %v", status, body)
	}
	at, _ := body["access_token"].(string)
	rt, _ := body["refresh_token"].(string)
	if err := srv.RevokeGrant(g.ID); err != nil {
		t.Fatal(err)
	}
	if revoked, err := srv.Revoked(g.ID); err != nil || !revoked {
		t.Fatalf("Revoked = %v, %v; want true", revoked, err)
	}
	form.Set("refresh_token", rt)
	if status, body := post(t, srv.TokenURL, form, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after RevokeGrant: HTTP %d %v; want 400 invalid_grant", status, body)
	}
	if status, _, _ := callAPI(t, srv, at); status != http.StatusUnauthorized {
		t.Fatalf("API after RevokeGrant: HTTP %d; want 401", status)
	}
	if _, err := srv.Revoked("no-such-grant"); err == nil {
		t.Error("Revoked of an unknown grant: no error")
	}
	if err := srv.RevokeGrant("no-such-grant"); err == nil {
		t.Error("RevokeGrant of an unknown grant: no error")
	}
}

func TestRevocationEndpoint(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s"})
	g := issue(t, srv, "app")
	req, err := http.NewRequest(http.MethodPost, srv.RevocationURL,
		strings.NewReader(url.Values{"token": {g.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "s")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: HTTP %d", resp.StatusCode)
	}
	if status, body := post(t, srv.TokenURL, refreshForm(g.RefreshToken), "app", "s"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after revocation: HTTP %d %v; want 400 invalid_grant", status, body)
	}
}

func TestAPIRejects(t *testing.T) {
	srv := start(t, authserver.Options{AccessTokenLifespan: time.Second})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s"})
	g := issue(t, srv, "app")
	status, body := post(t, srv.TokenURL, refreshForm(g.RefreshToken), "app", "s")
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %v", status, body)
	}
	at, _ := body["access_token"].(string)

	tests := []struct {
		name, token, wantAuth string
	}{
		{"no token", "", `Bearer realm="authserver"`},
		{"unknown token", "ory_at_nope.nope", `Bearer realm="authserver", error="invalid_token", error_description="the access token is not active"`},
		{"refresh token as access token", g.RefreshToken, `Bearer realm="authserver", error="invalid_token", error_description="the access token is not active"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, wwwAuth, _ := callAPI(t, srv, tc.token)
			if status != http.StatusUnauthorized || wwwAuth != tc.wantAuth {
				t.Errorf("HTTP %d, WWW-Authenticate %q; want 401, %q", status, wwwAuth, tc.wantAuth)
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		// fosite reads the wall clock: wait for the one-second token to expire.
		if status, _, ti := callAPI(t, srv, at); status != http.StatusOK {
			t.Fatalf("fresh token: HTTP %d", status)
		} else {
			time.Sleep(time.Until(ti.ExpiresAt) + 50*time.Millisecond)
		}
		status, wwwAuth, _ := callAPI(t, srv, at)
		want := `Bearer realm="authserver", error="invalid_token", error_description="the access token expired"`
		if status != http.StatusUnauthorized || wwwAuth != want {
			t.Errorf("HTTP %d, WWW-Authenticate %q; want 401, %q", status, wwwAuth, want)
		}
	})
}

func TestIssueAndAddClientErrors(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s", Scopes: []string{"read"}})
	if _, err := srv.IssueRefreshToken("nobody"); err == nil {
		t.Error("IssueRefreshToken for an unknown client: no error")
	}
	if _, err := srv.IssueRefreshToken("app", "write"); err == nil {
		t.Error("IssueRefreshToken with a scope the client may not hold: no error")
	}
	for _, c := range []authserver.Client{
		{Secret: "s"},
		{ID: "x", AuthMethod: authserver.ClientSecretBasic},
		{ID: "x", Secret: "s", AuthMethod: authserver.None},
		{ID: "x", Secret: "s", AuthMethod: "private_key_jwt"},
		{ID: "x", AuthMethod: authserver.PrivateKeyJWT},
		{ID: "x", Secret: "s", PublicKey: testKey().Public()},
	} {
		if err := srv.AddClient(c); err == nil {
			t.Errorf("AddClient(%+v): no error", c)
		}
	}
}

func TestTokenDelay(t *testing.T) {
	srv := start(t, authserver.Options{TokenDelay: 50 * time.Millisecond})
	addClient(t, srv, authserver.Client{ID: "app", Secret: "s"})
	g := issue(t, srv, "app")
	if status, body := post(t, srv.TokenURL, refreshForm(g.RefreshToken), "app", "s"); status != http.StatusOK {
		t.Fatalf("HTTP %d %v", status, body)
	}
}

var testKey = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })

// TestPrivateKeyJWT: the server verifies private_key_jwt assertions, signed here with go-jose
// (independently of oauth2refresh): a good one is accepted once, its jti never again, and an
// assertion for another audience, signed with another key, expired, or a client secret instead
// of an assertion are refused without spending the refresh token.
func TestPrivateKeyJWT(t *testing.T) {
	srv := start(t, authserver.Options{})
	addClient(t, srv, authserver.Client{ID: "keyed", AuthMethod: authserver.PrivateKeyJWT, PublicKey: testKey().Public(), KeyID: "k1", SigningAlg: "ES256"})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(key *ecdsa.PrivateKey, claims map[string]any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims)
		obj, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		jws, _ := obj.CompactSerialize()
		return jws
	}
	now := time.Now().Unix()
	claims := func(jti, aud string, exp int64) map[string]any {
		return map[string]any{"iss": "keyed", "sub": "keyed", "aud": aud, "jti": jti, "iat": now, "exp": exp}
	}
	good := sign(testKey(), claims("jti-1", srv.TokenURL, now+60))
	tests := []struct {
		name       string
		assertion  string // "" sends a client secret with HTTP Basic instead
		wantStatus int
		wantError  string
	}{
		{"good", good, 200, ""},
		{"same jti again", good, 400, "jti_known"},
		{"another audience", sign(testKey(), claims("jti-2", srv.URL, now+60)), 401, "invalid_client"},
		{"another key", sign(other, claims("jti-3", srv.TokenURL, now+60)), 401, "invalid_client"},
		{"expired", sign(testKey(), claims("jti-4", srv.TokenURL, now-60)), 500, "error"},
		{"client secret", "", 401, "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := issue(t, srv, "keyed")
			form := refreshForm(g.RefreshToken)
			user := ""
			if tc.assertion == "" {
				user = "keyed"
			} else {
				form.Set("client_id", "keyed")
				form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				form.Set("client_assertion", tc.assertion)
			}
			status, body := post(t, srv.TokenURL, form, user, "s3cret")
			if status != tc.wantStatus || (tc.wantError != "" && body["error"] != tc.wantError) {
				t.Fatalf("HTTP %d %v; want %d %q", status, body["error"], tc.wantStatus, tc.wantError)
			}
			if revoked, err := srv.Revoked(g.ID); err != nil || revoked {
				t.Errorf("Revoked = %v, %v; want false", revoked, err)
			}
		})
	}
}
