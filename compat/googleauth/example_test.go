package googleauth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	tasks "google.golang.org/api/tasks/v1"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/googleauth"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// fakeGoogle stands in for Google on loopback: a token endpoint at /token that knows refresh
// token "1//saved" and a Tasks API that answers the holder of the access token it issued.
func fakeGoogle() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/token" && r.PostFormValue("refresh_token") == "1//saved":
			fmt.Fprint(w, `{"access_token":"ya29.fresh","token_type":"Bearer","expires_in":3599}`)
		case r.URL.Path == "/token":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
		case r.Header.Get("Authorization") == "Bearer ya29.fresh":
			fmt.Fprint(w, `{"items":[{"id":"l1","title":"My Tasks"}]}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
}

// A generated Google API client authorized by an oauth2refresh.TokenSource. In a real program
// the TokenURL is google.Endpoint.TokenURL from golang.org/x/oauth2/google, and there is no
// option.WithEndpoint.
func Example() {
	srv := fakeGoogle()
	defer srv.Close()
	ctx := context.Background()

	e := &oauth2refresh.Endpoint{
		TokenURL:     srv.URL + "/token",
		ClientID:     "123.apps.googleusercontent.com",
		ClientSecret: "GOCSPX-secret",
		AuthMethod:   oauth2refresh.AuthRequestBody, // as Google documents it
	}
	ts := e.TokenSource(ctx, &oauth2.Token{RefreshToken: "1//saved"})

	svc, err := tasks.NewService(ctx,
		googleauth.ClientOption(ts), // or option.WithTokenSource(ts): see the package doc
		option.WithEndpoint(srv.URL+"/"))
	if err != nil {
		log.Fatal(err)
	}
	lists, err := svc.Tasklists.List().Context(ctx).Do()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lists.Items[0].Title)

	// When the grant is gone, the API call fails with an error that oauth2refresh's sentinels
	// still recognize.
	revoked := e.TokenSource(ctx, &oauth2.Token{RefreshToken: "1//revoked"})
	svc, err = tasks.NewService(ctx, googleauth.ClientOption(revoked), option.WithEndpoint(srv.URL+"/"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = svc.Tasklists.List().Context(ctx).Do()
	fmt.Println(errors.Is(err, oauth2refresh.ErrInvalidGrant), strings.Contains(err.Error(), "invalid_grant"))
	// Output:
	// My Tasks
	// true true
}

// One Google API client per tenant, each authorized by the tenant's grant in an
// oauth2refresh.Manager: the Manager keeps the tokens (here in a filestore.Store) and holds the
// grants in memory only while they are used.
func Example_manager() {
	srv := fakeGoogle()
	defer srv.Close()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e := &oauth2refresh.Endpoint{
		TokenURL:     srv.URL + "/token",
		ClientID:     "123.apps.googleusercontent.com",
		ClientSecret: "GOCSPX-secret",
		AuthMethod:   oauth2refresh.AuthRequestBody,
	}
	m := oauth2refresh.NewManager(e, &filestore.Store{Dir: dir}, nil)
	// After the tenant's authorization code exchange:
	if err := m.Grant("tenant-42").SaveToken(ctx, &oauth2.Token{RefreshToken: "1//saved"}); err != nil {
		log.Fatal(err)
	}

	svc, err := tasks.NewService(ctx, googleauth.ClientOption(m.Grant("tenant-42")), option.WithEndpoint(srv.URL+"/"))
	if err != nil {
		log.Fatal(err)
	}
	lists, err := svc.Tasklists.List().Context(ctx).Do()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lists.Items[0].Title)
	// Output:
	// My Tasks
}
