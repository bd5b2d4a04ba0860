// Command demo shows oauth2refresh at work, with no account and no setup:
//
//	go -C examples/demo run .
//
// It starts a real OAuth 2.0 authorization server (ory/fosite, in-process, on loopback) that
// rotates refresh tokens and revokes a grant whose old refresh token comes back, and a small
// protected API beside it. Then it behaves like an app: the grant's first token is saved to an
// filestore.Store with oauth2refresh.SaveToken, and an oauth2refresh.NewClient built on
// a TokenSource made with oauth2refresh.WithStore (and a nil token: it loads the grant from the
// store) calls the API across several 3-second access-token lifetimes, each token refreshed
// early, in the background; the store saves every rotated refresh token to its file. A restart
// resumes from that file with a fresh TokenSource, and an old refresh token is replayed,
// fosite revokes the grant, and the app's next API call fails with the typed error
// oauth2refresh.ErrInvalidGrant. Finally two tenants, acme and globex, are served through
// an oauth2refresh.Manager in each of two replicas sharing the filestore.Store, early refresh on:
// the Managers' events tell that one replica refreshes each token, in the background, and the other
// picks it up from the store; halfway, globex's grant is revoked at
// the server, the first replica to refresh it is refused and marks it dead in the store, and
// OnDead fires in both replicas (in the second from the mark, without a token request), while
// acme keeps working. The token files live in a temporary directory, removed at the end.
//
// With these environment variables it runs the same flow against a real provider instead:
//
//	OAUTH2REFRESH_TOKEN_URL      the provider's token endpoint (required to select this mode)
//	OAUTH2REFRESH_CLIENT_ID      the client id
//	OAUTH2REFRESH_CLIENT_SECRET  the client secret (empty for a public client)
//	OAUTH2REFRESH_REFRESH_TOKEN  a refresh token (used only when the token file does not exist)
//	OAUTH2REFRESH_AUTH_METHOD    basic, post, none or auto (default auto, or none without a secret)
//	OAUTH2REFRESH_SCOPES         scopes to ask for on refresh, space- or comma-separated (optional)
//	OAUTH2REFRESH_API_URL        a resource to GET with the access token (optional)
//	OAUTH2REFRESH_TOKEN_DIR      the filestore.Store's directory (default: oauth2refresh-demo in the
//	                             user's cache directory, os.UserCacheDir); the token is in
//	                             demo.json there
//
// Against a real provider the token file is kept (mode 0600): when the provider rotates
// refresh tokens, the newest one is only there. The revocation step is skipped, since it would
// revoke the real grant. The demo never prints a secret or a token, only the first 6 hex
// digits of a token's SHA-256.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

func main() {
	if err := run(context.Background(), defaultConfig(os.Stdout, os.Getenv)); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// config is what run needs; tests shorten the durations.
type config struct {
	out    io.Writer
	getenv func(string) string

	lifespan time.Duration // access-token lifespan of the local server
	before   time.Duration // how long the app calls the API before the restart
	after    time.Duration // and after it
	every    time.Duration // pause between API calls
	tenants  time.Duration // how long the replicas call the API for the two tenants

	secret string // the local client's secret; random when empty
	dir    string // the local token directory, kept; a temporary one, removed, when empty
}

// defaultConfig is the demo's config. Access tokens live 3 s: fosite rounds their expiry to the
// second and truncates expires_in (see authserver.Options), so a token refreshed early, at half
// its servable life (1.25 s with the 0.5 s ExpiryMargin), may be told to live 1 s less than the
// one it replaces; it still expires after it, by 0.25 s, as a replica that picks a token up from
// the store needs (it takes a stored token that expires after its own; with 2 s it might refresh
// again instead).
func defaultConfig(out io.Writer, getenv func(string) string) config {
	return config{out: out, getenv: getenv, lifespan: 3 * time.Second,
		before: 5 * time.Second, after: 2500 * time.Millisecond, every: 250 * time.Millisecond,
		tenants: 3 * time.Second}
}

func run(ctx context.Context, c config) error {
	if c.getenv("OAUTH2REFRESH_TOKEN_URL") != "" {
		return runProvider(ctx, c)
	}
	return runLocal(ctx, c)
}

// sayMu guards the output: a Manager's OnDead and events may be called on goroutines of its own.
var sayMu sync.Mutex

// say prints one line of the demo's story.
func (c config) say(format string, args ...any) {
	sayMu.Lock()
	defer sayMu.Unlock()
	fmt.Fprintf(c.out, format+"\n", args...)
}

// clientID is the client of the local authorization server.
const clientID = "demo-app"

// storeKey is the key of the demo's grant in the filestore.Store: its token is in Dir/demo.json.
const storeKey = "demo"

// tokenFile is the file in which a filestore.Store in dir keeps the demo's grant.
func tokenFile(dir string) string { return filepath.Join(dir, storeKey+".json") }

// runLocal runs the demo against an in-process fosite server, with the token file in c.dir, or
// in a temporary directory removed at the end.
func runLocal(ctx context.Context, c config) error {
	dir := c.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "oauth2refresh-demo-"); err != nil {
			return err
		}
	}
	err := local(ctx, c, &filestore.Store{Dir: dir})
	file := tokenFile(dir)
	info := fileInfo(file)
	if c.dir != "" {
		c.say("\ntoken file            %s (%s)", file, info)
		return err
	}
	if rerr := os.RemoveAll(dir); rerr != nil {
		return errors.Join(err, rerr)
	}
	c.say("\ntoken file            %s (%s), removed with its temporary directory", file, info)
	return err
}

// local is the flow of runLocal, with the grant kept in store.
func local(ctx context.Context, c config, store *filestore.Store) error {
	srv, err := authserver.Start(authserver.Options{AccessTokenLifespan: c.lifespan})
	if err != nil {
		return err
	}
	defer srv.Close()
	secret := c.secret
	if secret == "" {
		secret = rand.Text()
	}
	if err := srv.AddClient(authserver.Client{ID: clientID, Secret: secret,
		AuthMethod: authserver.ClientSecretBasic, Scopes: []string{"profile"}}); err != nil {
		return err
	}
	grant, err := srv.IssueRefreshToken(clientID, "profile")
	if err != nil {
		return err
	}
	apiURL, stopAPI, err := startAPI(srv)
	if err != nil {
		return err
	}
	defer stopAPI()
	c.say("authorization server  ory/fosite at %s: access tokens live %v, refresh tokens rotate on every use", srv.URL, c.lifespan)
	c.say("protected API         %s", apiURL)

	// After the authorization code exchange, the app seeds the store with the grant.
	if err := oauth2refresh.SaveToken(ctx, store, storeKey, &oauth2.Token{RefreshToken: grant.RefreshToken}); err != nil {
		return err
	}
	c.say("signed in             refresh token %s saved with SaveToken to the filestore.Store in %s", short(grant.RefreshToken), store.Dir)

	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: clientID, ClientSecret: secret}
	c.say("\n1. the app calls the API for %v, through a TokenSource that loads the grant from the store", c.before)
	if _, err := useAPI(ctx, c, e, store, apiURL, c.before); err != nil {
		return err
	}

	c.say("\n2. restart: the process exits, a new one starts with a new TokenSource and resumes from %s", filepath.Base(tokenFile(store.Dir)))
	ts, err := useAPI(ctx, c, e, store, apiURL, c.after)
	if err != nil {
		return err
	}

	c.say("\n3. the first refresh token %s, long rotated out, is sent again (a leaked copy, or a replica with a stale one)", short(grant.RefreshToken))
	_, err = e.Refresh(ctx, grant.RefreshToken)
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		return fmt.Errorf("replaying an old refresh token: got %v, want invalid_grant", err)
	}
	c.say("   token endpoint: invalid_grant; fosite revokes the whole grant, newest tokens included")
	// The API answers 401 to the revoked access token (or it expired, and the refresh comes
	// first): the client's refresh is refused, and the call fails with that error. A
	// background refresh that was already under way when fosite revoked the grant may still
	// have got a token, rejected in turn: then the call gets that 401, and the next one fails.
	client := oauth2refresh.NewClient(ctx, ts)
	for try := 0; try < 3; try++ {
		var status int
		if status, _, err = get(ctx, client, apiURL); err != nil {
			break
		}
		c.say("   the app's next API call: HTTP %d", status)
	}
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		return fmt.Errorf("calling the API with a revoked grant: got %v, want an error matching invalid_grant", err)
	}
	c.say("   the app's next API call: the token is rejected, the refresh that follows refused")
	c.say("   its refresh fails with errors.Is(err, oauth2refresh.ErrInvalidGrant): time to ask the user to sign in again")
	if d := (*oauth2refresh.DeadGrantError)(nil); errors.As(err, &d) {
		c.say("   the store marks the grant dead (%s) in %s: a process loading it gets the error, and sends nothing", deadReason(d), filepath.Base(tokenFile(store.Dir)))
	}
	if err := tenants(ctx, c, srv, store, e, apiURL); err != nil {
		return err
	}

	st := srv.Stats()
	c.say("\nserver saw %d token requests (%d refreshes, %d refused) and %d API calls (%d refused)",
		st.TokenRequests, st.TokensIssued, st.TokenErrors, st.APIRequests, st.APIRejected)
	return nil
}

// fileInfo describes the file at path: its mode, or why it cannot be read.
func fileInfo(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("mode %#o", fi.Mode().Perm())
}

// useAPI is the app, as one run of its process: a TokenSource made with a nil token and
// WithStore loads the grant from store, and an oauth2refresh.NewClient built on it calls apiURL
// every c.every for d. It returns the TokenSource.
func useAPI(ctx context.Context, c config, e *oauth2refresh.Endpoint, store oauth2refresh.Store, apiURL string, d time.Duration) (*oauth2refresh.TokenSource, error) {
	held, err := store.Load(ctx, storeKey)
	if err != nil {
		return nil, err
	}
	if held == nil {
		return nil, fmt.Errorf("no token stored under %q", storeKey)
	}
	c.say("   token file holds refresh token %s%s", short(held.RefreshToken), accessInfo(held))
	var refreshes atomic.Int64
	// picked is set by a flight's events.StorePickup, before the flight hands OnNewToken the
	// token it picked up (another process's, or the one this process loaded): not a refresh.
	// The source runs one flight at a time.
	var picked atomic.Bool
	ts := e.TokenSource(ctx, nil,
		// The store persists: it saves every rotated token before the TokenSource hands it
		// out. OnNewToken and the events are only here to tell what happens.
		oauth2refresh.WithStore(store, storeKey),
		oauth2refresh.WithEvents(func(ev events.Event) {
			if ev.Kind == events.StorePickup {
				picked.Store(true)
			}
		}),
		oauth2refresh.OnNewToken(func(_ context.Context, t *oauth2.Token) error {
			if picked.Swap(false) {
				c.say("   access token %s picked up from the store, no token request", short(t.AccessToken))
				return nil
			}
			refreshes.Add(1)
			c.say("   refreshed: access token %s for %ds, refresh token rotated to %s, saved by the store", short(t.AccessToken), t.ExpiresIn, short(t.RefreshToken))
			return nil
		}),
		// Tokens here live 3 s: stop serving one half a second before it expires. Early
		// refresh is on (the default): from half of a token's servable life on, a call
		// starts a refresh in the background while requests go on with the current token.
		oauth2refresh.ExpiryMargin(500*time.Millisecond),
	)
	if apiURL == "" {
		if _, err := ts.Token(); err != nil {
			return nil, err
		}
		return ts, nil
	}
	// fosite revokes the previous access token as soon as it rotates: a request still using
	// it gets a 401, which the client retries once with the new token.
	client := oauth2refresh.NewClient(ctx, ts)
	var calls, ok int
	for end := time.Now().Add(d); ; {
		status, body, err := get(ctx, client, apiURL)
		if err != nil {
			return nil, err
		}
		calls++
		if status == http.StatusOK {
			ok++
			if calls == 1 {
				c.say("   API: %s", body)
			}
		} else {
			c.say("   API call failed: HTTP %d", status)
		}
		if !time.Now().Add(c.every).Before(end) {
			break
		}
		select {
		case <-time.After(c.every):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.say("   %d API calls, %d OK, %d refreshes", calls, ok, refreshes.Load())
	return ts, nil
}

// accessInfo describes the access token of a stored token, if it has one.
func accessInfo(t *oauth2.Token) string {
	if t.AccessToken == "" {
		return ", no access token yet"
	}
	if left := time.Until(t.Expiry); !t.Expiry.IsZero() {
		return fmt.Sprintf(" and access token %s (%v left)", short(t.AccessToken), left.Round(100*time.Millisecond))
	}
	return " and access token " + short(t.AccessToken)
}

// get calls url with client and returns the status and the first line of the body.
func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return 0, "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return resp.StatusCode, line, nil
}

// startAPI starts the protected API on its own loopback port: GET /hello answers for a valid
// access token from srv and 401 otherwise.
func startAPI(srv *authserver.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /hello", srv.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := authserver.TokenInfoFromContext(r.Context())
		fmt.Fprintf(w, "hello %s, client %s may read your %s\n", ti.Subject, ti.ClientID, strings.Join(ti.Scopes, ", "))
	})))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	return "http://" + ln.Addr().String() + "/hello", func() { hs.Close() }, nil
}

// runProvider runs the demo against a real provider configured through the environment.
func runProvider(ctx context.Context, c config) error {
	e := &oauth2refresh.Endpoint{
		TokenURL:     c.getenv("OAUTH2REFRESH_TOKEN_URL"),
		ClientID:     c.getenv("OAUTH2REFRESH_CLIENT_ID"),
		ClientSecret: c.getenv("OAUTH2REFRESH_CLIENT_SECRET"),
		Scopes:       strings.FieldsFunc(c.getenv("OAUTH2REFRESH_SCOPES"), func(r rune) bool { return r == ' ' || r == ',' }),
	}
	var err error
	if e.AuthMethod, err = parseAuthMethod(c.getenv("OAUTH2REFRESH_AUTH_METHOD"), e.ClientSecret); err != nil {
		return err
	}
	dir, err := providerDir(c.getenv)
	if err != nil {
		return err
	}
	store := &filestore.Store{Dir: dir}
	file := tokenFile(dir)
	apiURL := c.getenv("OAUTH2REFRESH_API_URL")
	c.say("provider              %s, client %s, %v", e.TokenURL, e.ClientID, e.AuthMethod)
	stored, err := store.Load(ctx, storeKey)
	if err != nil {
		return err
	}
	if stored != nil {
		c.say("token file            %s exists: resuming from it", file)
	} else {
		rt := c.getenv("OAUTH2REFRESH_REFRESH_TOKEN")
		if rt == "" {
			return fmt.Errorf("set OAUTH2REFRESH_REFRESH_TOKEN (or OAUTH2REFRESH_TOKEN_DIR to a directory holding %s)", filepath.Base(file))
		}
		if err := oauth2refresh.SaveToken(ctx, store, storeKey, &oauth2.Token{RefreshToken: rt}); err != nil {
			return err
		}
		c.say("token file            refresh token %s saved with SaveToken to %s", short(rt), file)
	}

	c.say("\n1. the app gets a token, then is told it was rejected (as after a 401) and refreshes again")
	ts, err := useAPI(ctx, c, e, store, apiURL, 0)
	if err != nil {
		return err
	}
	tok, err := ts.Token()
	if err != nil {
		return err
	}
	ts.Invalidate(tok)
	if _, err := ts.Token(); err != nil {
		return err
	}

	c.say("\n2. restart: a new process starts with a new TokenSource and resumes from %s", filepath.Base(file))
	if _, err := useAPI(ctx, c, e, store, apiURL, 0); err != nil {
		return err
	}
	c.say("\n3. skipped against a real provider: replaying an old refresh token would revoke your grant")
	c.say("\ntoken file            %s (%s) holds the newest token; delete it when done", file, fileInfo(file))
	return nil
}

// providerDir returns the token directory of the real-provider mode: OAUTH2REFRESH_TOKEN_DIR,
// or oauth2refresh-demo in the user's cache directory. Not a fixed name in the shared
// temporary directory: another user could create it first, and plant or read token files
// (filestore.Store refuses such a directory, but the demo would then not run).
func providerDir(getenv func(string) string) (string, error) {
	if dir := getenv("OAUTH2REFRESH_TOKEN_DIR"); dir != "" {
		return dir, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no directory for the token file (set OAUTH2REFRESH_TOKEN_DIR): %w", err)
	}
	return filepath.Join(cache, "oauth2refresh-demo"), nil
}

// parseAuthMethod reads OAUTH2REFRESH_AUTH_METHOD.
func parseAuthMethod(s, secret string) (oauth2refresh.AuthMethod, error) {
	switch strings.ToLower(s) {
	case "":
		if secret == "" {
			return oauth2refresh.AuthNone, nil
		}
		return oauth2refresh.AuthAutoDetect, nil
	case "auto":
		return oauth2refresh.AuthAutoDetect, nil
	case "basic", "client_secret_basic":
		return oauth2refresh.AuthBasic, nil
	case "post", "body", "client_secret_post":
		return oauth2refresh.AuthRequestBody, nil
	case "none", "public":
		return oauth2refresh.AuthNone, nil
	}
	return 0, fmt.Errorf("OAUTH2REFRESH_AUTH_METHOD %q: want basic, post, none or auto", s)
}

// deadReason says why err's grant is dead, as errors.Is tells: "revoked",
// "refresh_token_expired", or "invalid_grant" when the server refused the refresh token.
func deadReason(err error) string {
	switch {
	case errors.Is(err, oauth2refresh.ErrGrantRevoked):
		return "revoked"
	case errors.Is(err, oauth2refresh.ErrRefreshTokenExpired):
		return "refresh_token_expired"
	}
	return "invalid_grant"
}

// short identifies a token without revealing it: "#" and the first 6 hex digits of its
// SHA-256.
func short(token string) string {
	if token == "" {
		return "(none)"
	}
	sum := sha256.Sum256([]byte(token))
	return "#" + hex.EncodeToString(sum[:3])
}

// tenantKeys are the keys of the two tenants' grants in the filestore.Store: acme.json, globex.json.
var tenantKeys = []string{"acme", "globex"}

// tenants is step 4: two tenants' grants, started with Grant.SaveToken, served through an
// oauth2refresh.Manager in each of two replicas sharing store (as two processes of one
// service would), with early refresh on, as in step 1. The Managers' events tell which replica
// refreshed a grant and which picked its token up from the store. After half of c.tenants,
// globex's grant is revoked at the server: the first replica to refresh it is refused, marks it
// dead in the store, and its OnDead fires; the other replica's OnDead fires from that mark
// without sending anything. acme goes on.
func tenants(ctx context.Context, c config, srv *authserver.Server, store oauth2refresh.Store, e *oauth2refresh.Endpoint, apiURL string) error {
	c.say("\n4. two tenants through an oauth2refresh.Manager in each of two replicas sharing the filestore.Store, for %v", c.tenants)
	grants := map[string]authserver.Grant{}
	signup := oauth2refresh.NewManager(e, store, nil)
	for _, key := range tenantKeys {
		g, err := srv.IssueRefreshToken(clientID, "profile")
		if err != nil {
			return err
		}
		grants[key] = g
		// After each tenant's authorization code exchange, the app starts its grant.
		if err := signup.Grant(key).SaveToken(ctx, &oauth2.Token{RefreshToken: g.RefreshToken}); err != nil {
			return err
		}
	}
	c.say("   signed in: acme (refresh token %s) and globex (%s), each saved with Grant.SaveToken", short(grants["acme"].RefreshToken), short(grants["globex"].RefreshToken))
	c.say("   the replicas call the API every %v; each token is refreshed early, in the background, by the replica that gets there first", c.every)

	before := srv.Stats()
	fl := &flights{changed: make(chan struct{}, 1), retries: map[string]int{}, refreshes: map[string]int{}, pickups: map[string]int{}}
	replicas := []*replica{newReplica(ctx, c, "replica 1", e, store, fl), newReplica(ctx, c, "replica 2", e, store, fl)}
	half, end := time.Now().Add(c.tenants/2), time.Now().Add(c.tenants)
	limit := end.Add(10 * c.lifespan) // a bound, should the replicas never catch up
	revoked := false
	for {
		for _, r := range replicas {
			for _, key := range tenantKeys {
				r.call(ctx, key, apiURL)
			}
		}
		// Wait for the refreshes these calls started in the background, then tell what
		// each got.
		got, err := fl.settle(ctx)
		if err != nil {
			return err
		}
		caughtUp, err := fl.tell(c, got)
		if err != nil {
			return err
		}
		// globex's grant is revoked once half the time is over, when the replicas have just
		// caught up with its newest token: no refresh of it is under way. The replicas stop
		// once the time is over, both have reported globex dead, and they have just caught
		// up with acme: the counts below are then complete.
		now := time.Now()
		switch {
		case !revoked && !now.Before(half) && caughtUp["globex"]:
			if err := srv.RevokeGrant(grants["globex"].ID); err != nil {
				return err
			}
			revoked = true
			c.say("   globex's administrator disconnects the app at the provider: fosite revokes globex's grant")
		case revoked && !now.Before(end) && caughtUp["acme"] && deadIn(replicas, "globex") == len(replicas):
			tenantTotals(c, srv, before, fl, replicas)
			return nil
		case now.After(limit):
			return fmt.Errorf("step 4: no end %v after its time was over: revoked %v, globex dead in %d replicas", limit.Sub(end), revoked, deadIn(replicas, "globex"))
		}
		select {
		case <-time.After(c.every):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tenantTotals tells what step 4 did, for each tenant and at the server (whose stats were
// before when the step began).
func tenantTotals(c config, srv *authserver.Server, before authserver.Stats, fl *flights, replicas []*replica) {
	st := srv.Stats()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var refreshes int
	for _, key := range tenantKeys {
		calls, ok := 0, 0
		for _, r := range replicas {
			calls, ok = calls+r.calls[key], ok+r.ok[key]
		}
		refreshes += fl.refreshes[key]
		flights := fmt.Sprintf("%d refreshes and %d pickups", fl.refreshes[key], fl.pickups[key])
		if dead := deadIn(replicas, key); dead > 0 {
			c.say("   %-6s %d API calls, %d OK until the revocation; %s", key, calls, ok, flights)
			c.say("          OnDead fired once in each of %d replicas: time to ask %s to sign in again", dead, key)
			continue
		}
		c.say("   %-6s %d API calls, %d OK, %d of them retried after a 401 (fosite revokes an access token when it rotates); %s",
			key, calls, ok, fl.retries[key], flights)
	}
	// A refresh token sent twice would be refused too, and its grant revoked.
	c.say("   the server got %d token requests in this step: %d refreshes and %d refused, globex's after its revocation",
		st.TokenRequests-before.TokenRequests, refreshes, st.TokenErrors-before.TokenErrors)
}

// flights follows, through the replicas' events, the flights of their grants (see the events
// package: a refresh, or a pickup of the token another replica saved): those under way, and
// those that got a token since the demo last told of them.
type flights struct {
	changed chan struct{} // gets a value, if it has room, when a flight ends

	mu      sync.Mutex     // guards running, ended and retries
	running int            // flights started and not ended, in both replicas
	ended   []flight       // flights that got a token, not told of yet
	retries map[string]int // a Transport's retries after a 401, per key

	// Used by the demo's one goroutine only.
	refreshes, pickups map[string]int // per key, in both replicas
}

// flight is one that got a token.
type flight struct {
	r       *replica
	key     string
	picked  bool           // picked up from the store (events.OutcomePickedUp): no refresh
	trigger events.Trigger // why it started: events.TriggerEarly in the background
}

// event is the replicas' events hook: called on the goroutine of a flight or a call, it returns
// at once and does not call the TokenSource (see WithEvents).
func (fl *flights) event(r *replica, ev events.Event) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	switch ev.Kind {
	case events.RefreshStarted:
		fl.running++
	case events.RefreshFinished:
		fl.running--
		if ev.Outcome == events.OutcomeOK || ev.Outcome == events.OutcomePickedUp {
			fl.ended = append(fl.ended, flight{r: r, key: ev.Key, picked: ev.Outcome == events.OutcomePickedUp, trigger: ev.Trigger})
		}
		select {
		case fl.changed <- struct{}{}:
		default:
		}
	case events.UnauthorizedRetry:
		fl.retries[ev.Key]++
	}
}

// settle waits until no flight whose start the events reported is under way, and returns those
// that got a token since its last call. A flight that a call started in the background reports
// its start from its own goroutine, maybe after settle returned: it is then returned by the
// next settle.
func (fl *flights) settle(ctx context.Context) ([]flight, error) {
	for {
		fl.mu.Lock()
		running, got := fl.running, fl.ended
		if running == 0 {
			fl.ended = nil
		}
		fl.mu.Unlock()
		if running == 0 {
			return got, nil
		}
		select {
		case <-fl.changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tell says what the flights in got obtained, the refreshes first (a pickup takes a token
// refreshed before it), and counts them. It returns the keys the replicas caught up with: a
// pickup of the key was among got, and each token of it refreshed so far was picked up by the
// other replica. Neither replica then has a flight of that key under way or about to start: the
// calls that started the flights in got found no other, and a token just obtained starts none
// before half its life.
func (fl *flights) tell(c config, got []flight) (map[string]bool, error) {
	slices.SortStableFunc(got, func(a, b flight) int {
		switch {
		case a.picked == b.picked:
			return 0
		case a.picked:
			return 1
		}
		return -1
	})
	caughtUp := map[string]bool{}
	for _, f := range got {
		// The token the flight got: no other flight of the grant in its replica has ended
		// since (none is under way), so it is the one served, from memory.
		tok, err := f.r.m.Grant(f.key).Token()
		if err != nil {
			return nil, err
		}
		if f.picked {
			fl.pickups[f.key]++
			caughtUp[f.key] = true
			f.r.c.say("   %s %-6s access token %s picked up from the store%s, no token request", f.r.name, f.key, short(tok.AccessToken), how(f.trigger))
			continue
		}
		fl.refreshes[f.key]++
		f.r.c.say("   %s %-6s refreshed%s: access token %s for %ds, refresh token rotated to %s, saved by the store",
			f.r.name, f.key, how(f.trigger), short(tok.AccessToken), tok.ExpiresIn, short(tok.RefreshToken))
	}
	for key := range caughtUp {
		caughtUp[key] = fl.refreshes[key] == fl.pickups[key]
	}
	return caughtUp, nil
}

// how says why a flight started, as its events.Trigger tells.
func how(t events.Trigger) string {
	switch t {
	case events.TriggerEarly:
		return " in the background"
	case events.TriggerRejected:
		return " after a 401"
	case events.TriggerExpired:
		return " once expired"
	}
	return "" // events.TriggerFirst: the replica's first call for the grant
}

// replica is one process of the service, with its own Manager of the tenants' grants.
type replica struct {
	c       config
	name    string
	m       *oauth2refresh.Manager
	clients map[string]*http.Client

	// Used by the demo's one goroutine only.
	calls, ok map[string]int  // API calls, and those that succeeded, per key
	failed    map[string]bool // keys whose API call failed, said once

	mu   sync.Mutex     // guards dead
	dead map[string]int // OnDead calls, per key
}

func newReplica(ctx context.Context, c config, name string, e *oauth2refresh.Endpoint, store oauth2refresh.Store, fl *flights) *replica {
	r := &replica{c: c, name: name, clients: map[string]*http.Client{},
		calls: map[string]int{}, ok: map[string]int{}, failed: map[string]bool{}, dead: map[string]int{}}
	r.m = oauth2refresh.NewManager(e, store, &oauth2refresh.ManagerOptions{
		// The options of every grant, as in step 1 (early refresh on, the default), and the
		// events that tell the demo what each flight did.
		SourceOptions: []oauth2refresh.Option{
			oauth2refresh.ExpiryMargin(500 * time.Millisecond),
			oauth2refresh.WithEvents(func(ev events.Event) { fl.event(r, ev) }),
		},
		// Once in this process for each grant found dead: refused when this replica
		// refreshed it, or marked dead in the store by another one.
		OnDead: func(key string, d *oauth2refresh.DeadGrantError) {
			how := "read from the mark in the store, no token request sent"
			if d.Err != nil {
				how = "its refresh was refused; marked dead in the store"
			}
			r.mu.Lock()
			r.dead[key]++
			r.mu.Unlock()
			c.say("   %s %-6s OnDead: dead grant (%s): %s", r.name, key, deadReason(d), how)
		},
	})
	for _, key := range tenantKeys {
		r.clients[key] = r.m.Grant(key).Client(ctx)
	}
	return r
}

// deadIn returns in how many of replicas OnDead fired for key.
func deadIn(replicas []*replica, key string) int {
	n := 0
	for _, r := range replicas {
		r.mu.Lock()
		if r.dead[key] > 0 {
			n++
		}
		r.mu.Unlock()
	}
	return n
}

// call calls apiURL with key's grant, and says when a call first fails.
func (r *replica) call(ctx context.Context, key, apiURL string) {
	r.calls[key]++
	status, _, err := get(ctx, r.clients[key], apiURL)
	switch {
	case err == nil && status == http.StatusOK:
		r.ok[key]++
	case r.failed[key]:
	case err == nil:
		r.failed[key] = true
		r.c.say("   %s %-6s API call refused: HTTP %d", r.name, key, status)
	case errors.Is(err, oauth2refresh.ErrInvalidGrant):
		r.failed[key] = true
		r.c.say("   %s %-6s API call failed: errors.Is(err, oauth2refresh.ErrInvalidGrant)", r.name, key)
	default:
		r.failed[key] = true
		r.c.say("   %s %-6s API call failed: %v", r.name, key, err)
	}
}
