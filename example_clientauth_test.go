package oauth2refresh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// assertionServer is a token endpoint for the examples: it shows the client authentication it
// receives, with the JOSE header and claims of a JWT assertion (not its signature or jti,
// which change every time).
func assertionServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		fmt.Printf("client_id=%s client_secret=%q\n", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"))
		fmt.Printf("client_assertion_type=%s\n", r.PostForm.Get("client_assertion_type"))
		if parts := strings.Split(r.PostForm.Get("client_assertion"), "."); len(parts) == 3 {
			var hdr map[string]any
			var claims struct{ Iss, Sub, Aud string }
			b, _ := base64.RawURLEncoding.DecodeString(parts[0])
			json.Unmarshal(b, &hdr)
			b, _ = base64.RawURLEncoding.DecodeString(parts[1])
			json.Unmarshal(b, &claims)
			fmt.Printf("header=%v iss=%s sub=%s aud=%s\n", hdr, claims.Iss, claims.Sub, strings.TrimPrefix(claims.Aud, "http://"+r.Host))
		} else {
			fmt.Printf("client_assertion=%s\n", r.PostForm.Get("client_assertion"))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}`)
	}))
}

func ExampleJWTAssertion() {
	srv := assertionServer()
	defer srv.Close()

	// The client's private key, whose public key is registered with the provider (its JWKS).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in real life: loaded, or a KMS crypto.Signer
	if err != nil {
		log.Fatal(err)
	}
	e := &oauth2refresh.Endpoint{
		TokenURL:   srv.URL + "/oauth2/token",
		ClientID:   "my-client",
		AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
		Assertion:  oauth2refresh.JWTAssertion{Key: key, KeyID: "key-2026"}, // a new JWT for every request
	}
	tok, err := e.Refresh(context.Background(), "rt-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", tok.AccessToken)
	// Output:
	// client_id=my-client client_secret=""
	// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
	// header=map[alg:ES256 kid:key-2026 typ:JWT] iss=my-client sub=my-client aud=/oauth2/token
	// access token: at-2
}

func ExampleAuthMethod_clientSecretJWT() {
	srv := assertionServer()
	defer srv.Close()

	// client_secret_jwt: the secret signs an HS256 assertion and never crosses the network.
	e := &oauth2refresh.Endpoint{
		TokenURL:     srv.URL + "/oauth2/token",
		ClientID:     "my-client",
		ClientSecret: "a-secret-of-at-least-32-bytes-for-HS256",
		AuthMethod:   oauth2refresh.AuthClientSecretJWT,
	}
	if _, err := e.Refresh(context.Background(), "rt-1"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// client_id=my-client client_secret=""
	// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
	// header=map[alg:HS256 typ:JWT] iss=my-client sub=my-client aud=/oauth2/token
}

func ExampleAssertionFile() {
	srv := assertionServer()
	defer srv.Close()

	// Workload identity: the platform keeps a fresh token in a file (Kubernetes projected
	// service account token, AZURE_FEDERATED_TOKEN_FILE); it is read again for every request.
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("federated-token-1\n"), 0o600)

	e := &oauth2refresh.Endpoint{
		TokenURL:   srv.URL + "/oauth2/token",
		ClientID:   "my-client",
		AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
		Assertion:  oauth2refresh.AssertionFile(file),
	}
	if _, err := e.Refresh(context.Background(), "rt-1"); err != nil {
		log.Fatal(err)
	}
	os.WriteFile(file, []byte("federated-token-2\n"), 0o600) // the platform rotated it
	if _, err := e.Refresh(context.Background(), "rt-2"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// client_id=my-client client_secret=""
	// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
	// client_assertion=federated-token-1
	// client_id=my-client client_secret=""
	// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
	// client_assertion=federated-token-2
}

// exampleClientCert is the client's certificate of the mTLS examples (self-signed:
// self_signed_tls_client_auth; one from a CA for tls_client_auth). In real life:
// tls.LoadX509KeyPair("client.crt", "client.key").
func exampleClientCert() tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "my-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func ExampleAuthMethod_mutualTLS() {
	cert := exampleClientCert()

	// A provider that requires a client certificate on every connection and binds the access
	// token to it (RFC 8705 §3): the API accepts the token only over the same certificate.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0].Subject.CommonName
		switch r.URL.Path {
		case "/oauth2/token":
			r.ParseForm()
			fmt.Printf("token endpoint: certificate %s, client_id=%s\n", peer, r.PostForm.Get("client_id"))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"at-bound-to-`+peer+`","token_type":"Bearer","expires_in":3600}`)
		case "/api":
			fmt.Printf("API: certificate %s, %s\n", peer, r.Header.Get("Authorization"))
			io.WriteString(w, "ok")
		}
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()

	// One HTTP client with the certificate, for the token endpoint and the API alike. In real
	// life: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}.
	tr := srv.Client().Transport.(*http.Transport).Clone() // trusts the test server
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})

	e := &oauth2refresh.Endpoint{
		TokenURL:   srv.URL + "/oauth2/token",
		ClientID:   "my-client",
		AuthMethod: oauth2refresh.AuthTLSClient, // HTTPClient nil: the one in ctx
	}
	client := oauth2refresh.NewClient(ctx, e.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-1"}))
	resp, err := client.Get(srv.URL + "/api")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output:
	// token endpoint: certificate my-client, client_id=my-client
	// API: certificate my-client, Bearer at-bound-to-my-client
}

// The certificate kept to the token endpoint: it is in Endpoint.HTTPClient, and the client in
// the context, through which NewClient sends API requests, has none. The API (here on a
// server of its own that asks for a certificate but does not require one) never sees it.
func ExampleAuthMethod_mutualTLSTokenEndpointOnly() {
	cert := exampleClientCert()
	// Both servers ask for a client certificate (tls.RequestClientCert) and say whether one came.
	server := func(name string, h http.HandlerFunc) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer := "no certificate"
			if len(r.TLS.PeerCertificates) > 0 {
				peer = "certificate " + r.TLS.PeerCertificates[0].Subject.CommonName
			}
			fmt.Printf("%s: %s\n", name, peer)
			h(w, r)
		}))
		srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
		return srv
	}
	token := server("token endpoint", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
	})
	defer token.Close()
	api := server("API", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	defer api.Close()

	// The token endpoint's client carries the certificate. In real life:
	// &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: ...}}}.
	withCert := token.Client().Transport.(*http.Transport).Clone() // trusts the test servers
	withCert.TLSClientConfig.Certificates = []tls.Certificate{cert}
	e := &oauth2refresh.Endpoint{
		TokenURL:   token.URL + "/oauth2/token",
		ClientID:   "my-client",
		AuthMethod: oauth2refresh.AuthTLSClient,
		HTTPClient: &http.Client{Transport: withCert},
	}
	// The API's client does not. In real life: http.DefaultClient, or no client in ctx.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, api.Client())
	client := oauth2refresh.NewClient(ctx, e.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-1"}))
	resp, err := client.Get(api.URL + "/api")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output:
	// token endpoint: certificate my-client
	// API: no certificate
}
