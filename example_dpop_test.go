package oauth2refresh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// dpopShow prints what a request carries: its Authorization scheme, and the DPoP proof's typ,
// htm, htu path, nonce and whether it has ath (not its jti, iat or signature, which change
// every time).
func dpopShow(who string, r *http.Request) (nonce string) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	var hdr struct{ Typ string }
	var claims struct{ Htm, Htu, Nonce, Ath string }
	if parts := strings.Split(r.Header.Get("DPoP"), "."); len(parts) == 3 {
		b, _ := base64.RawURLEncoding.DecodeString(parts[0])
		json.Unmarshal(b, &hdr)
		b, _ = base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(b, &claims)
	}
	fmt.Printf("%s: auth=%q typ=%s htm=%s htu=%s nonce=%q ath=%t\n", who, scheme, hdr.Typ, claims.Htm,
		strings.TrimPrefix(claims.Htu, "http://"+r.Host), claims.Nonce, claims.Ath != "")
	return claims.Nonce
}

func ExampleDPoPKey() {
	// An authorization server and an API that both want a nonce (RFC 9449 §8, §9).
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if dpopShow("token endpoint", r) != "as-nonce" {
			w.Header().Set("DPoP-Nonce", "as-nonce")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"use_dpop_nonce"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"at-2","token_type":"DPoP","expires_in":3600,"refresh_token":"rt-2"}`)
	}))
	defer as.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dpopShow("API", r) != "api-nonce" {
			w.Header().Set("DPoP-Nonce", "api-nonce")
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer api.Close()

	// The key the grant is bound to: keep it as long as the grant (a file, a KMS key), and
	// use the same one in every process that shares the grant.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	dk, err := oauth2refresh.NewDPoPKey(key)
	if err != nil {
		log.Fatal(err)
	}
	ep := &oauth2refresh.Endpoint{
		TokenURL:   as.URL + "/token",
		ClientID:   "my-app",
		AuthMethod: oauth2refresh.AuthNone, // a public client: its refresh token is bound to the key
		DPoP:       dk,
	}
	ctx := context.Background()
	src := ep.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-1", TokenType: "DPoP"})
	client := oauth2refresh.NewClient(ctx, src) // not oauth2.NewClient: it sends no proofs

	for range 2 {
		resp, err := client.Get(api.URL + "/me?fields=name")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	tok, _ := src.Token()
	fmt.Println(tok.Type(), tok.Extra("dpop_jkt") == dk.Thumbprint())
	// Output:
	// token endpoint: auth="" typ=dpop+jwt htm=POST htu=/token nonce="" ath=false
	// token endpoint: auth="" typ=dpop+jwt htm=POST htu=/token nonce="as-nonce" ath=false
	// API: auth="DPoP" typ=dpop+jwt htm=GET htu=/me nonce="" ath=true
	// API: auth="DPoP" typ=dpop+jwt htm=GET htu=/me nonce="api-nonce" ath=true
	// 200 hello
	// API: auth="DPoP" typ=dpop+jwt htm=GET htu=/me nonce="api-nonce" ath=true
	// 200 hello
	// DPoP true
}
