package oauth2refresh_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// countingSource is the oauth2.TokenSource behind oauth2.ReuseTokenSourceWithExpiry: it
// counts the refreshes asked of it.
type countingSource struct{ n *atomic.Int64 }

func (s countingSource) Token() (*oauth2.Token, error) {
	s.n.Add(1)
	return &oauth2.Token{AccessToken: "at-new", Expiry: time.Now().Add(time.Hour)}, nil
}

// TestExpiryBoundaryLikeXOAuth2: at each instant around Expiry - margin (before, exactly at,
// after, by a second and by a nanosecond), a TokenSource serves its token from its cache or
// refreshes it exactly as golang.org/x/oauth2 does with the same token at the same instant:
// Token.Valid (the default 10 s margin) and ReuseTokenSourceWithExpiry (a 1 min margin), whose
// rule is "expired when Expiry.Round(0).Add(-margin).Before(now)". Inside a synctest bubble
// time.Now and the monotonic clock are the same fake clock for both libraries, and stand still
// but for the exact sleeps the test asks: "exactly at" is exact. Each instant is reached three
// ways: by a token handed in at that instant (the slow path), by one handed in earlier with
// the clock then moved to it within the second before the next wall-clock check (the hot path
// and its monotonic deadline), and through WithClock (the custom clock).
func TestExpiryBoundaryLikeXOAuth2(t *testing.T) {
	offsets := []time.Duration{-time.Second, -time.Nanosecond, 0, time.Nanosecond, time.Second} // now - (Expiry - margin)
	for _, margin := range []time.Duration{oauth2refresh.DefaultExpiryMargin, time.Minute} {
		for _, how := range []string{"handed in at the instant", "clock moved to the instant", "WithClock"} {
			t.Run(fmt.Sprintf("margin %v/%s", margin, how), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					want := map[time.Duration]string{}
					got := map[time.Duration]string{}
					for _, off := range offsets {
						const lead = 500 * time.Millisecond // how long before the instant a token is handed in
						start := time.Now()
						instant := start
						if how == "clock moved to the instant" {
							instant = start.Add(lead)
						}
						tok := &oauth2.Token{AccessToken: "at-old", RefreshToken: "rt", TokenType: "Bearer",
							Expiry: instant.Add(margin - off)}

						// golang.org/x/oauth2, at the instant.
						var xn atomic.Int64
						xs := oauth2.ReuseTokenSourceWithExpiry(tok, countingSource{&xn}, margin)
						var requests atomic.Int64
						e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: testClientID,
							HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
								requests.Add(1)
								return memResponse(r, 200, "application/json", `{"access_token":"at-new","token_type":"Bearer","expires_in":3600}`), nil
							})}}
						opts := []oauth2refresh.Option{oauth2refresh.ExpiryMargin(margin), oauth2refresh.EarlyRefresh(0)}
						if how == "WithClock" {
							clk := newFakeClock()
							clk.set(instant)
							opts = append(opts, oauth2refresh.WithClock(clk.now))
						}
						ts := e.TokenSource(context.Background(), tok, opts...)
						time.Sleep(instant.Sub(start)) // exact in the bubble

						xt, err := xs.Token()
						if err != nil {
							t.Fatal(err)
						}
						valid := tok.Valid()
						ot, err := ts.Token()
						if err != nil {
							t.Fatal(err)
						}
						synctest.Wait() // a background refresh, had one started, has run
						decide := func(access string, refreshes int64) string {
							if access == "at-old" && refreshes == 0 {
								return "served"
							}
							return fmt.Sprintf("refreshed (%s, %d refreshes)", access, refreshes)
						}
						want[off] = decide(xt.AccessToken, xn.Load())
						if margin == oauth2refresh.DefaultExpiryMargin && valid != (want[off] == "served") {
							t.Errorf("offset %v: Token.Valid() = %v, ReuseTokenSourceWithExpiry %s", off, valid, want[off])
						}
						got[off] = decide(ot.AccessToken, requests.Load())
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("decision by now - (Expiry - margin), x/oauth2 (-want) and oauth2refresh (+got):\n%s", diff)
					}
				})
			})
		}
	}
}
