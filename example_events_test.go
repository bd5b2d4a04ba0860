package oauth2refresh_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// exampleServer is a token endpoint that grants the first refresh and refuses the others.
func exampleServer() *httptest.Server {
	var n atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) > 1 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"grant revoked"}`)
			return
		}
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600}`)
	}))
}

// Count refreshes by outcome, as a metrics library would, with the events of a TokenSource.
func ExampleWithEvents() {
	srv := exampleServer()
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}
	src := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithEvents(func(ev events.Event) {
			switch ev.Kind {
			case events.RefreshFinished:
				fmt.Printf("refresh (%s): %s, status %d, %d caller(s) waited\n", ev.Trigger, ev.Outcome, ev.Status, ev.Waiters)
			case events.BackoffStarted:
				fmt.Printf("backing off after %d failure(s)\n", ev.Failures)
			}
		}))

	src.Token()
	src.Invalidate(nil) // as after a revocation
	_, err := src.Token()
	fmt.Println(err)
	// Output:
	// refresh (first): ok, status 0, 1 caller(s) waited
	// refresh (invalidated): invalid_grant, status 400, 1 caller(s) waited
	// backing off after 1 failure(s)
	// oauth2refresh: token endpoint returned "invalid_grant" (HTTP 400): grant revoked
}
