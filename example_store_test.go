package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// Two replicas of a service share one grant through a filestore.Store (a RedisStore or
// PostgresStore across machines): the first one to need a new token refreshes it, the other
// picks it up from the store without a request, and the rotated refresh token is never sent
// twice.
func ExampleWithStore() {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, n, n)
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}

	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store := &filestore.Store{Dir: dir}

	// After the authorization code exchange, the app seeds the store with the grant's token.
	ctx := context.Background()
	first := &oauth2.Token{RefreshToken: "rt-0"}
	if err := oauth2refresh.SaveToken(ctx, store, "tenant-42", first); err != nil {
		panic(err)
	}

	// Each replica (here two TokenSources) starts from whatever the store holds.
	replicaA := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
	replicaB := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
	a, err := replicaA.Token()
	if err != nil {
		panic(err)
	}
	b, err := replicaB.Token()
	if err != nil {
		panic(err)
	}
	stored, err := store.Load(ctx, "tenant-42")
	if err != nil {
		panic(err)
	}
	fmt.Println("replica A:", a.AccessToken)
	fmt.Println("replica B:", b.AccessToken)
	fmt.Println("stored refresh token:", stored.RefreshToken)
	fmt.Println("token requests:", requests.Load())
	// Output:
	// replica A: at-1
	// replica B: at-1
	// stored refresh token: rt-1
	// token requests: 1
}

// A grant the server refuses dies once for every replica: the first one to send its refresh
// token gets invalid_grant and marks the grant dead in the store; the others report it without
// a request. (SaveToken of a new token, after the user authorized again, revives it.)
func ExampleDeadGrantError() {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"token revoked by the user"}`)
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}

	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store := &filestore.Store{Dir: dir}
	ctx := context.Background()
	if err := oauth2refresh.SaveToken(ctx, store, "tenant-42", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		panic(err)
	}

	for _, replica := range []string{"A", "B"} {
		ts := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
		_, err := ts.Token()
		var dead *oauth2refresh.DeadGrantError
		if errors.As(err, &dead) {
			fmt.Printf("replica %s: grant %s is dead, refused here: %t\n", replica, dead.Key, dead.Err != nil)
		}
	}
	fmt.Println("token requests:", requests.Load())
	// Output:
	// replica A: grant tenant-42 is dead, refused here: true
	// replica B: grant tenant-42 is dead, refused here: false
	// token requests: 1
}
