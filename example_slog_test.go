package oauth2refresh_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// Log what a TokenSource does with log/slog: routine refreshes at Debug, a refused grant at
// Error, a backoff at Warn. No line holds a token.
func ExampleWithEvents_log() {
	srv := exampleServer()
	defer srv.Close()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "until": // left out for a stable output
				return slog.Attr{}
			}
			return a
		},
	}))
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "app", ClientSecret: "s3cret"}
	src := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithEvents(events.Log(logger)))

	src.Token()
	src.Invalidate(nil)
	src.Token()
	// Output:
	// level=DEBUG msg="oauth2refresh: refresh started" trigger=first
	// level=DEBUG msg="oauth2refresh: refresh finished" trigger=first outcome=ok waiters=1
	// level=INFO msg="oauth2refresh: token dropped" trigger=invalidated
	// level=DEBUG msg="oauth2refresh: refresh started" trigger=invalidated
	// level=ERROR msg="oauth2refresh: refresh failed" trigger=invalidated outcome=invalid_grant status=400 waiters=1 failures=1 err="oauth2refresh: token endpoint returned \"invalid_grant\" (HTTP 400): grant revoked"
	// level=WARN msg="oauth2refresh: backing off" outcome=invalid_grant status=400 failures=1
}
