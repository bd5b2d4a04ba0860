package oauth2refresh

import (
	"context"
	"time"

	"golang.org/x/oauth2"
)

// RefreshAt is Endpoint.Refresh with the clock that stamps the token and its client
// assertion, for exact claims in the tests of client assertions.
func RefreshAt(ctx context.Context, e *Endpoint, refreshToken string, now func() time.Time) (*oauth2.Token, error) {
	return e.refresh(ctx, refreshToken, now)
}
