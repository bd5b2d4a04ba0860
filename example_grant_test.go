package oauth2refresh_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/tokenkit/oauth2refresh"
)

// A service's own token (the client_credentials grant), with the same engine, options and
// client as its users' tokens: NewClient authorizes every request, and the token is asked for
// once, not per request.
func ExampleEndpoint_ClientCredentials() {
	tokenServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		fmt.Printf("token request: grant_type=%s scope=%s\n", r.PostForm.Get("grant_type"), r.PostForm.Get("scope"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"service-token","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokenServer.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Authorization"))
	}))
	defer api.Close()

	ep := &oauth2refresh.Endpoint{
		TokenURL:     tokenServer.URL,
		ClientID:     "my-service",
		ClientSecret: "my-secret",
		Scopes:       []string{"api://orders/.default"},
	}
	client := oauth2refresh.NewClient(context.Background(), ep.ClientCredentials(context.Background()))
	for range 2 {
		resp, err := client.Get(api.URL)
		if err != nil {
			log.Fatal(err)
		}
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		resp.Body.Close()
		fmt.Printf("API saw: %s\n", b[:n])
	}
	// Output:
	// token request: grant_type=client_credentials scope=api://orders/.default
	// API saw: Bearer service-token
	// API saw: Bearer service-token
}

// Workload identity federation: the platform's token, in a file the platform keeps fresh
// (a Kubernetes projected service account token), exchanged for an access token (RFC 8693).
func ExampleEndpoint_TokenExchange() {
	tokenServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		fmt.Printf("subject_token=%s audience=%s\n", r.PostForm.Get("subject_token"), r.PostForm.Get("audience"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"federated","issued_token_type":"urn:ietf:params:oauth:token-type:access_token",`+
			`"token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokenServer.Close()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("eyJhbGciOi.k8s.token\n"), 0o600); err != nil {
		log.Fatal(err)
	}

	ep := &oauth2refresh.Endpoint{TokenURL: tokenServer.URL, AuthMethod: oauth2refresh.AuthNone, ClientID: "my-workload"}
	ts := ep.TokenExchange(context.Background(), &oauth2refresh.TokenExchange{
		SubjectTokenFile: file,
		SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
		Audience:         []string{"//iam.example/pools/prod"},
	})
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.Extra("issued_token_type"))
	// Output:
	// subject_token=eyJhbGciOi.k8s.token audience=//iam.example/pools/prod
	// federated urn:ietf:params:oauth:token-type:access_token
}
