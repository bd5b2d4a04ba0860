package pgstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenkit/oauth2refresh"
	pgstore "github.com/tokenkit/oauth2refresh/store/pgstore"
)

// Every replica of a service builds its TokenSource like this: whichever replica first needs
// a new token refreshes it, under the grant's lease in PostgreSQL, and the others pick it up.
// (Not run: it needs a PostgreSQL server.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@127.0.0.1:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store := &pgstore.Store{DB: pool}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	e := &oauth2refresh.Endpoint{TokenURL: "https://login.example.com/oauth2/token", ClientID: "app", ClientSecret: "s3cret"}
	ts := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts}}
	resp, err := client.Get("https://api.example.com/v1/invoices")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}
