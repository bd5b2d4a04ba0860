package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// exampleProvider stands in for a provider with one grant per tenant: its token endpoint
// rotates "TENANT/rt-N" into "TENANT/at-(N+1)" and "TENANT/rt-(N+1)", and refuses the
// refresh tokens of tenant "gone"; its revocation endpoint prints what it revokes; its API at
// /whoami answers with the access token it was sent.
func exampleProvider() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			rt := r.PostFormValue("refresh_token")
			tenant, n := "", 0
			if i := strings.LastIndex(rt, "/rt-"); i > 0 {
				tenant = rt[:i]
				fmt.Sscan(rt[i+len("/rt-"):], &n)
			}
			if tenant == "" || tenant == "gone" {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant"}`)
				return
			}
			fmt.Fprintf(w, `{"access_token":"%s/at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"%s/rt-%d"}`,
				tenant, n+1, tenant, n+1)
		case "/revoke":
			fmt.Printf("provider revoked %s (%s)\n", r.PostFormValue("token"), r.PostFormValue("token_type_hint"))
		case "/whoami":
			io.WriteString(w, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		}
	}))
}

// exampleManager returns a Manager of the provider's grants kept in a filestore.Store in dir.
func exampleManager(srv *httptest.Server, dir string, o *oauth2refresh.ManagerOptions) *oauth2refresh.Manager {
	e := &oauth2refresh.Endpoint{
		TokenURL:      srv.URL + "/token", // https:// in real life
		RevocationURL: srv.URL + "/revoke",
		ClientID:      "my-client",
		ClientSecret:  "my-secret",
	}
	return oauth2refresh.NewManager(e, &filestore.Store{Dir: dir}, o)
}

// A service that syncs each tenant's account at a provider keeps one grant per tenant in a
// Manager: tokens and API clients per tenant key, made from the store when needed.
func ExampleManager() {
	srv := exampleProvider()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	m := exampleManager(srv, dir, &oauth2refresh.ManagerOptions{
		OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
			// errors.Is says why: ErrGrantRevoked, ErrRefreshTokenExpired, or neither when
			// the provider refused the refresh token.
			fmt.Printf("tenant %s must connect its account again (revoked: %t)\n", key, errors.Is(err, oauth2refresh.ErrGrantRevoked))
		},
	})
	// After each tenant's authorization code exchange:
	for _, tenant := range []string{"acme", "globex", "gone"} {
		if err := m.Grant(tenant).SaveToken(ctx, &oauth2.Token{RefreshToken: tenant + "/rt-0"}); err != nil {
			panic(err)
		}
	}

	// Later, in any goroutine: an API client per tenant.
	for _, tenant := range []string{"acme", "globex", "gone", "acme"} {
		resp, err := m.Grant(tenant).Client(ctx).Get(srv.URL + "/whoami")
		if err != nil {
			fmt.Println(tenant+":", errors.Is(err, oauth2refresh.ErrInvalidGrant))
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s\n", tenant, b)
	}
	// Output:
	// acme: acme/at-1
	// globex: globex/at-1
	// tenant gone must connect its account again (revoked: false)
	// gone: true
	// acme: acme/at-1
}

// Saving a grant's token after the authorization code exchange, and saving one again, with
// the new authorization of a tenant whose grant died.
func ExampleGrant_SaveToken() {
	srv := exampleProvider()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	m := exampleManager(srv, dir, nil)

	// In the OAuth callback, after oauth2.Config.Exchange returned tok:
	tok := &oauth2.Token{RefreshToken: "gone/rt-0"}
	if err := m.Grant("tenant-7").SaveToken(ctx, tok); err != nil {
		panic(err)
	}
	_, err = m.Grant("tenant-7").TokenContext(ctx)
	var dead *oauth2refresh.DeadGrantError
	fmt.Println("dead:", errors.As(err, &dead), "revoked:", errors.Is(err, oauth2refresh.ErrGrantRevoked))

	// The tenant connects its account again.
	if err := m.Grant("tenant-7").SaveToken(ctx, &oauth2.Token{RefreshToken: "tenant-7/rt-0"}); err != nil {
		panic(err)
	}
	t, err := m.Grant("tenant-7").TokenContext(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("token:", t.AccessToken)
	// Output:
	// dead: true revoked: false
	// token: tenant-7/at-1
}

// Revoking a tenant's grant when it disconnects: the refresh token is revoked at the provider,
// and every process sharing the store finds the grant revoked without sending it again.
func ExampleGrant_Revoke() {
	srv := exampleProvider()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	m := exampleManager(srv, dir, &oauth2refresh.ManagerOptions{
		OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
			fmt.Printf("OnDead: %s revoked: %t\n", key, errors.Is(err, oauth2refresh.ErrGrantRevoked))
		},
	})
	if err := m.Grant("acme").SaveToken(ctx, &oauth2.Token{RefreshToken: "acme/rt-0"}); err != nil {
		panic(err)
	}
	if _, err := m.Grant("acme").TokenContext(ctx); err != nil { // refreshes: acme/rt-1
		panic(err)
	}

	if err := m.Grant("acme").Revoke(ctx); err != nil {
		panic(err)
	}
	_, err = m.Grant("acme").TokenContext(ctx)
	fmt.Println(errors.Is(err, oauth2refresh.ErrGrantRevoked))
	// Output:
	// provider revoked acme/rt-1 (refresh_token)
	// OnDead: acme revoked: true
	// true
}

// Deleting a grant deletes it from the store, without revoking it.
func ExampleGrant_Delete() {
	srv := exampleProvider()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	m := exampleManager(srv, dir, nil)
	if err := m.Grant("acme").SaveToken(ctx, &oauth2.Token{RefreshToken: "acme/rt-0"}); err != nil {
		panic(err)
	}
	if err := m.Grant("acme").Delete(ctx); err != nil {
		panic(err)
	}
	_, err = m.Grant("acme").TokenContext(ctx)
	fmt.Println(errors.Is(err, oauth2refresh.ErrNoRefreshToken))
	// Output:
	// true
}
