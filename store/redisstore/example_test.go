package redisstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"
	"github.com/tokenkit/oauth2refresh"
	redisstore "github.com/tokenkit/oauth2refresh/store/redisstore"
)

// Every replica of a service builds its TokenSource like this: whichever replica first needs
// a new token refreshes it, under the grant's lease in Redis, and the others pick it up.
// (Not run: it needs a Redis server.)
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store := &redisstore.Store{Client: rdb}

	e := &oauth2refresh.Endpoint{TokenURL: "https://login.example.com/oauth2/token", ClientID: "app", ClientSecret: "s3cret"}
	ts := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts}}
	resp, err := client.Get("https://api.example.com/v1/invoices")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}
