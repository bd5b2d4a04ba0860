package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

func ExampleEndpoint_Refresh() {
	// A token endpoint standing in for a real provider: it shows what it receives and
	// answers with a new, rotated refresh token and an OpenID Connect id_token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, _, _ := r.BasicAuth()
		fmt.Printf("server got: %s grant_type=%s refresh_token=%s scope=%q client=%s\n",
			r.Method, r.PostForm.Get("grant_type"), r.PostForm.Get("refresh_token"), r.PostForm.Get("scope"), id)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2","id_token":"eyJhbGciOi.e30.c2ln"}`)
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{
		TokenURL:     srv.URL + "/oauth2/token", // https:// in real life; http:// is allowed to loopback only
		ClientID:     "my-client",
		ClientSecret: "my-secret",
		Scopes:       []string{"openid", "email"},
	}
	tok, err := e.Refresh(context.Background(), "rt-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", tok.AccessToken, tok.Type())
	fmt.Println("next refresh token:", tok.RefreshToken)
	fmt.Println("expires in:", time.Until(tok.Expiry).Round(time.Minute))
	fmt.Println("id_token:", tok.Extra("id_token"))
	// Output:
	// server got: POST grant_type=refresh_token refresh_token=rt-1 scope="openid email" client=my-client
	// access token: at-2 Bearer
	// next refresh token: rt-2
	// expires in: 1h0m0s
	// id_token: eyJhbGciOi.e30.c2ln
}

func ExampleEndpoint_Refresh_unreadableExpiresIn() {
	// A server that rotates refresh tokens answers with a new access token, a new refresh
	// token and an expires_in that makes no sense. The refresh token that was sent is spent,
	// so an error here would lose the grant: the bad member is treated as absent instead.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-2","token_type":7,"expires_in":"-1","refresh_token":"rt-2"}`)
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	tok, err := e.Refresh(context.Background(), "rt-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", tok.AccessToken, tok.Type())
	fmt.Println("next refresh token:", tok.RefreshToken)
	fmt.Println("expiry known:", !tok.Expiry.IsZero())
	fmt.Printf("as sent: expires_in=%q token_type=%v\n", tok.Extra("expires_in"), tok.Extra("token_type"))
	// Output:
	// access token: at-2 Bearer
	// next refresh token: rt-2
	// expiry known: false
	// as sent: expires_in="-1" token_type=7
}

// salesforceToken is a token response with the provider's own fields.
type salesforceToken struct {
	oauth2refresh.TokenResponse
	InstanceURL string `json:"instance_url"`
	IssuedAt    string `json:"issued_at"`
}

func ExampleRefreshAccessToken() {
	// Salesforce sends no new refresh token, no expires_in, and the instance to call.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"00D-at","token_type":"Bearer","scope":"api refresh_token",`+
			`"instance_url":"https://acme.my.salesforce.com","issued_at":"1700000000000"}`)
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{
		TokenURL:     srv.URL + "/services/oauth2/token",
		ClientID:     "consumer-key",
		ClientSecret: "consumer-secret",
		AuthMethod:   oauth2refresh.AuthRequestBody,
	}
	tok, err := oauth2refresh.RefreshAccessToken[salesforceToken](context.Background(), e, "5Aep-rt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.Scope)
	fmt.Println("refresh token kept:", tok.RefreshToken)
	fmt.Println("call:", tok.InstanceURL)
	// Output:
	// 00D-at api refresh_token
	// refresh token kept: 5Aep-rt
	// call: https://acme.my.salesforce.com
}

func ExampleUnexpectedResponseError_token() {
	// The server rotates refresh tokens and sends refresh_token_expires_in as a string, which
	// the caller's type does not expect: the grant succeeded, the refresh token that was sent
	// is spent, and the new one is in the error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2",`+
			`"refresh_token_expires_in":"7776000"}`)
	}))
	defer srv.Close()

	type myToken struct {
		oauth2refresh.TokenResponse
		RefreshTokenExpiresIn int `json:"refresh_token_expires_in"`
	}
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	_, err := oauth2refresh.RefreshAccessToken[myToken](context.Background(), e, "rt-1")

	fmt.Println(err)
	var unexpected *oauth2refresh.UnexpectedResponseError
	if errors.As(err, &unexpected) && unexpected.Token != nil {
		fmt.Println("save the refresh token:", unexpected.Token.RefreshToken)
	}
	// Output:
	// oauth2refresh: unexpected token endpoint response (HTTP 200): decoding token response into oauth2refresh_test.myToken: json: cannot unmarshal string into Go struct field myToken.refresh_token_expires_in of type int
	// save the refresh token: rt-2
}

func ExampleRequestError() {
	// The refresh token was revoked: the server answers invalid_grant. Here it also echoes
	// the refresh token, which no error text of this package ever shows.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"refresh token rt-revoked-123 was revoked"}`)
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	_, err := e.Refresh(context.Background(), "rt-revoked-123")

	fmt.Println(err)
	if errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		fmt.Println("sign in again; retrying will not help, temporary:", oauth2refresh.IsTemporary(err))
	}
	var reqErr *oauth2refresh.RequestError
	if errors.As(err, &reqErr) {
		fmt.Println("code:", reqErr.Code, "status:", reqErr.StatusCode)
	}
	// Code written for golang.org/x/oauth2 keeps working.
	var retrieveErr *oauth2.RetrieveError
	if errors.As(err, &retrieveErr) {
		fmt.Println("x/oauth2:", retrieveErr.ErrorCode, retrieveErr.Response.Status)
	}
	// Output:
	// oauth2refresh: token endpoint returned "invalid_grant" (HTTP 400): refresh token [redacted] was revoked
	// sign in again; retrying will not help, temporary: false
	// code: invalid_grant status: 400
	// x/oauth2: invalid_grant 400 Bad Request
}

func ExampleIsTemporary() {
	// A proxy in front of the token endpoint answers with an HTML error page.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	_, err := e.Refresh(context.Background(), "rt-1")

	fmt.Println(err)
	var unexpected *oauth2refresh.UnexpectedResponseError
	if errors.As(err, &unexpected) {
		fmt.Printf("body starts with %.12q\n", unexpected.Body)
	}
	if oauth2refresh.IsTemporary(err) {
		fmt.Println("keep the refresh token and try again later")
	}
	// Output:
	// oauth2refresh: unexpected token endpoint response (HTTP 502)
	// body starts with "<html><body>"
	// keep the refresh token and try again later
}
