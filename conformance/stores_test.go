package conformance_test

// Several OS processes share one grant through each Store (filestore.Store, Redis, PostgreSQL)
// against the fosite server, which rotates refresh tokens and revokes the family when one
// comes back. The processes are this test binary run again with OAUTH2REFRESH_STORES_CHILD set
// (see init below); the authorization server runs in the parent test process.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	pgstore "github.com/tokenkit/oauth2refresh/store/pgstore"
	redisstore "github.com/tokenkit/oauth2refresh/store/redisstore"
)

// stChildEnv is the environment variable that makes this test binary a child process.
const stChildEnv = "OAUTH2REFRESH_STORES_CHILD"

// stConfig says which store to open, and, for a child process, what to do.
type stConfig struct {
	Kind string // "file", "redis" or "postgres"

	Dir           string // file
	RedisAddr     string // redis
	RedisPrefix   string // redis
	PostgresDSN   string // postgres
	PostgresTable string // postgres

	Key string

	// Child only.
	// Mode is "load": call the API; "hold": take the lease and wait to be killed; "failsave":
	// refresh with a store whose first FailSaves Saves fail, say how the first Token went,
	// wait for a line on stdin, then get a token; "once": get a token once and report it.
	Mode                               string
	FailSaves                          int32
	TokenURL, APIURL, ClientID, Secret string
	Duration                           time.Duration // load
	Goroutines                         int           // load
	HoldTTL                            time.Duration // hold
}

// stResult is what a "load" child reports on stdout, as one JSON line.
type stResult struct {
	Calls, Failures int64
	Errors          []string // the first few failures
	// Start and End bound the child's calls: when its first began and its last ended.
	Start, End time.Time
}

func init() { runChild(stChildEnv, "child", stChild) }

// runChild makes this test binary a child process started by startChild when the environment
// variable env is set: it decodes its config from env, runs fn with it and exits, 0 if fn
// succeeded. name starts its error messages.
func runChild[C any](env, name string, fn func(C) error) {
	v := os.Getenv(env)
	if v == "" {
		return
	}
	var cfg C
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, name+": bad config:", err)
		os.Exit(3)
	}
	if err := fn(cfg); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// stOpen opens the store cfg names. close releases its connections.
func stOpen(ctx context.Context, cfg stConfig) (s oauth2refresh.Store, close func(), err error) {
	switch cfg.Kind {
	case "file":
		return &filestore.Store{Dir: cfg.Dir}, func() {}, nil
	case "redis":
		rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, MaxRetries: -1, DialTimeout: 2 * time.Second})
		return &redisstore.Store{Client: rdb, Prefix: cfg.RedisPrefix}, func() { rdb.Close() }, nil
	case "postgres":
		pool, err := pgxpool.New(ctx, cfg.PostgresDSN)
		if err != nil {
			return nil, nil, err
		}
		s := &pgstore.Store{DB: pool, Table: cfg.PostgresTable}
		return s, pool.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown store kind %q", cfg.Kind)
}

// stClientOptions are the TokenSource options of every process: 1–2 s tokens are served
// until 100 ms before they expire, and refreshed in the background from 200 ms before that.
func stClientOptions(s oauth2refresh.Store, key string) []oauth2refresh.Option {
	return []oauth2refresh.Option{
		oauth2refresh.WithStore(s, key),
		oauth2refresh.ExpiryMargin(100 * time.Millisecond),
		oauth2refresh.EarlyRefresh(200 * time.Millisecond),
	}
}

func stChild(cfg stConfig) error {
	ctx := context.Background()
	s, closeStore, err := stOpen(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	switch cfg.Mode {
	case "failsave", "once":
		return stChildOnce(ctx, cfg, s)
	}
	if cfg.Mode == "hold" {
		if _, err := s.Lock(ctx, cfg.Key, cfg.HoldTTL); err != nil {
			return err
		}
		fmt.Println("locked")
		time.Sleep(time.Minute) // until killed
		return errors.New("not killed")
	}

	e := &oauth2refresh.Endpoint{TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, ClientSecret: cfg.Secret}
	ts := e.TokenSource(ctx, nil, stClientOptions(s, cfg.Key)...)
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts}, Timeout: 10 * time.Second}
	var (
		res stResult
		mu  sync.Mutex // guards res
		wg  sync.WaitGroup
	)
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		res.Failures++
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, msg)
		}
	}
	var calls atomic.Int64
	res.Start = time.Now()
	deadline := res.Start.Add(cfg.Duration)
	for range cfg.Goroutines {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				calls.Add(1)
				resp, err := client.Get(cfg.APIURL)
				if err != nil {
					fail(err.Error())
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						fail(fmt.Sprintf("API answered HTTP %d", resp.StatusCode))
					}
				}
				time.Sleep(20 * time.Millisecond) // leave CPU to the other processes
			}
		})
	}
	wg.Wait()
	res.End = time.Now()
	res.Calls = calls.Load()
	// A background refresh may still be on its way: let it land before exiting, so that the
	// token log sees every token the server issued (no call is made meanwhile).
	time.Sleep(500 * time.Millisecond)
	return json.NewEncoder(os.Stdout).Encode(res)
}

// stOnceResult is what a "failsave" or "once" child reports on its last stdout line.
type stOnceResult struct {
	Err    string // the last Token error, "" for none
	Status int    // the API's answer to the token got
}

// stFailingStore is a Store whose leases' first n Saves fail without reaching the store, as
// when the connection is reset.
type stFailingStore struct {
	oauth2refresh.Store
	n atomic.Int32
}

type stFailingLease struct {
	oauth2refresh.Lease
	s *stFailingStore
}

func (s *stFailingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &stFailingLease{l, s}, nil
}

func (l *stFailingLease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.s.n.Add(-1) >= 0 {
		return errors.New("test: read tcp: connection reset by peer")
	}
	return l.Lease.Save(ctx, t)
}

// stChildOnce is the "failsave" and "once" modes of a child.
func stChildOnce(ctx context.Context, cfg stConfig, s oauth2refresh.Store) error {
	if cfg.Mode == "failsave" {
		fs := &stFailingStore{Store: s}
		fs.n.Store(cfg.FailSaves)
		s = fs
	}
	e := &oauth2refresh.Endpoint{TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, ClientSecret: cfg.Secret}
	ts := e.TokenSource(ctx, nil, stClientOptions(s, cfg.Key)...)
	var res stOnceResult
	if cfg.Mode == "once" {
		fmt.Println("asking")
	}
	tok, err := ts.Token()
	if cfg.Mode == "failsave" {
		fmt.Println("first:", err == nil)
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		// Retry, through the backoff, until the token is saved and handed out.
		for deadline := time.Now().Add(20 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			tok, err = ts.Token()
		}
	}
	if err != nil {
		res.Err = err.Error()
	} else {
		resp, err := bearerClient(tok.AccessToken).Get(cfg.APIURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		res.Status = resp.StatusCode
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// stKind is one store under test.
type stKind struct {
	name string
	// config returns the config of a fresh, empty store for t, or skips t.
	config func(t *testing.T) stConfig
}

var stKinds = []stKind{
	{"file", func(t *testing.T) stConfig {
		return stConfig{Kind: "file", Dir: t.TempDir(), Key: "tenant-42"}
	}},
	{"redis", func(t *testing.T) stConfig {
		addr := os.Getenv("OAUTH2REFRESH_REDIS_ADDR")
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stReachable(t, "Redis server at "+addr+" (OAUTH2REFRESH_REDIS_ADDR)", rdb.Ping(ctx).Err())
		prefix := fmt.Sprintf("oauth2refresh-conformance:%d:", time.Now().UnixNano())
		t.Cleanup(func() {
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			defer rdb.Close()
			ctx := context.Background()
			if keys, err := rdb.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		})
		return stConfig{Kind: "redis", RedisAddr: addr, RedisPrefix: prefix, Key: "tenant-42"}
	}},
	{"postgres", func(t *testing.T) stConfig {
		dsn := os.Getenv("OAUTH2REFRESH_POSTGRES_DSN")
		if dsn == "" {
			dsn = "postgres://oauth2refresh:oauth2refresh@127.0.0.1:5432/oauth2refresh?sslmode=disable"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, dsn)
		if err == nil {
			defer pool.Close()
			err = pool.Ping(ctx)
		}
		stReachable(t, "PostgreSQL server (OAUTH2REFRESH_POSTGRES_DSN)", err)
		table := fmt.Sprintf("oauth2refresh_conformance_%d", time.Now().UnixNano())
		if err := (&pgstore.Store{DB: pool, Table: table}).CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			pool, err := pgxpool.New(context.Background(), dsn)
			if err == nil {
				pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
				pool.Close()
			}
		})
		return stConfig{Kind: "postgres", PostgresDSN: dsn, PostgresTable: table, Key: "tenant-42"}
	}},
}

// stReachable skips t when the server did not answer (err != nil), or fails it when CI is set.
func stReachable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := "no " + what + "; `bash .ci/services` starts one: " + err.Error()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// stSetup starts fosite with 2 s access tokens, seeds a grant and the store with its refresh
// token, and returns the server, the grant and the store (opened in this process).
func stSetup(t *testing.T, cfg stConfig, opts authserver.Options) (*authserver.Server, authserver.Grant, oauth2refresh.Store) {
	t.Helper()
	srv := startFosite(t, opts)
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s3cret", Scopes: []string{"read"}}, "read")
	s, closeStore, err := stOpen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeStore)
	if err := oauth2refresh.SaveToken(context.Background(), s, cfg.Key, &oauth2.Token{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	return srv, g, s
}

// stStart starts a child process with cfg.
func stStart(t *testing.T, ctx context.Context, cfg stConfig) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd, out, _ := stStartIO(t, ctx, cfg)
	return cmd, out
}

// stStartIO starts a child process with cfg, returning its stdout and stdin too.
func stStartIO(t *testing.T, ctx context.Context, cfg stConfig) (*exec.Cmd, io.Reader, io.WriteCloser) {
	t.Helper()
	return startChild(t, ctx, stChildEnv, cfg)
}

// startChild starts this test binary as a child process that runs no test, with cfg as JSON in
// the environment variable env, and returns its stdout and stdin; it is killed at cleanup.
func startChild(t *testing.T, ctx context.Context, env string, cfg any) (*exec.Cmd, io.Reader, io.WriteCloser) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, out, in
}

// stIssued is one token response with an access token: when the token endpoint sent it and
// the lifetime it gave.
type stIssued struct {
	at        time.Time
	expiresIn time.Duration
}

// stTokenLog is a proxy in front of a token endpoint that records the tokens it issues.
type stTokenLog struct {
	URL string

	mu     sync.Mutex
	issued []stIssued // in the order sent; guarded by mu
}

func newStTokenLog(t *testing.T, tokenURL string) *stTokenLog {
	l := &stTokenLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, tokenURL, r.Body)
		if err != nil {
			t.Errorf("token log: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if resp.StatusCode == http.StatusOK {
			var tr struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.ExpiresIn <= 0 {
				t.Errorf("token log: token response without access token or expires_in (%v)", err)
			} else {
				l.mu.Lock()
				l.issued = append(l.issued, stIssued{time.Now(), time.Duration(tr.ExpiresIn) * time.Second})
				l.mu.Unlock()
			}
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// tokens returns the tokens issued so far, in order.
func (l *stTokenLog) tokens() []stIssued {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.issued)
}

// stWindow is how long before its expiry a token is refreshed: the ExpiryMargin plus the
// EarlyRefresh of stClientOptions. No process refreshes a token it got at time r with
// expires_in e before r + e - stWindow.
const stWindow = 300 * time.Millisecond

// TestStoresMultiProcess: 3 processes of 16 goroutines each call the protected API through a
// Transport for 5 s of 1–2 s tokens, sharing the grant through the store. No call fails, the
// family is never revoked, and the grant is refreshed once per token lifetime in all, not once
// per process: no refresh comes before the token it replaces was due, and there are no more
// refreshes than token lifetimes in the run (one more for a run that ends just after one).
func TestStoresMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const (
		processes  = 3
		goroutines = 16
		duration   = 5 * time.Second
		tokenDelay = 50 * time.Millisecond
	)
	for _, k := range stKinds {
		t.Run(k.name, func(t *testing.T) {
			cfg := k.config(t)
			srv, g, _ := stSetup(t, cfg, authserver.Options{
				AccessTokenLifespan: 2 * time.Second,
				// A slow token endpoint widens every race: the refresh token sent has been
				// rotated, and the old access token revoked, while the response is on its way.
				TokenDelay: tokenDelay,
			})
			tokenLog := newStTokenLog(t, srv.TokenURL)
			child := cfg
			child.Mode, child.TokenURL, child.APIURL, child.ClientID, child.Secret = "load", tokenLog.URL, srv.APIURL, "app", "s3cret"
			child.Duration, child.Goroutines = duration, goroutines
			ctx, cancel := context.WithTimeout(context.Background(), duration+30*time.Second)
			defer cancel()
			type proc struct {
				cmd *exec.Cmd
				out io.Reader
			}
			var procs []proc
			for range processes {
				cmd, out := stStart(t, ctx, child)
				procs = append(procs, proc{cmd, out})
			}
			var total stResult
			var last time.Time // when the last call of all the processes ended
			for i, p := range procs {
				b, _ := io.ReadAll(p.out)
				if err := p.cmd.Wait(); err != nil {
					t.Fatalf("process %d: %v", i, err)
				}
				var r stResult
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatalf("process %d said %q: %v", i, b, err)
				}
				if r.Calls == 0 {
					t.Errorf("process %d made no calls", i)
				}
				if r.Failures != 0 {
					t.Errorf("process %d: %d of %d API calls failed: %q", i, r.Failures, r.Calls, r.Errors)
				}
				total.Calls += r.Calls
				total.Failures += r.Failures
				if r.End.After(last) {
					last = r.End
				}
			}
			st := srv.Stats()
			issued := tokenLog.tokens()
			if int64(len(issued)) != st.TokensIssued || len(issued) == 0 {
				t.Fatalf("the token log saw %d tokens, the server issued %d", len(issued), st.TokensIssued)
			}

			// Each refresh after the first was due. No process starts refreshing a token
			// before expires_in - stWindow after it received it, which is after the log
			// recorded it, and the server holds the answer back tokenDelay more: a token
			// issued earlier than that after the previous one was a refresh of a token not
			// yet due, as a process refreshing besides the others would make.
			var lives []string
			for i, tok := range issued {
				lives = append(lives, fmt.Sprintf("%v+%v", tok.at.Sub(issued[0].at).Round(time.Millisecond), tok.expiresIn))
				if i == 0 {
					continue
				}
				prev := issued[i-1]
				if due := prev.at.Add(prev.expiresIn - stWindow + tokenDelay); tok.at.Before(due) {
					t.Errorf("refresh %d came %v before the token it replaced was due: not once per lifetime", i+1, due.Sub(tok.at))
				}
			}
			// The lifetimes of the run: from the first token on, each token the server gave
			// (of the shortest lifetime once there are no more) lasts until it is due and its
			// refresh is answered, until the last call ended. A refresh takes tokenDelay and
			// about 50 ms more (the first call in the window, the store's lease, the save);
			// more or less than that adds up over the run, and the run may end just after a
			// token came due, so the count may be one off.
			const refreshTime = tokenDelay + 50*time.Millisecond
			lifetimes := 0
			for at, i := issued[0].at, 0; at.Before(last); i++ {
				life := time.Second // the shortest expires_in of a 2 s lifespan
				if i < len(issued) {
					life = issued[i].expiresIn
				}
				at = at.Add(life - stWindow + refreshTime)
				lifetimes++
			}
			t.Logf("%d processes × %d goroutines, calls over %v: %d API calls, %d refreshes for %d token lifetimes (%s), %d API 401s retried; server %+v",
				processes, goroutines, last.Sub(issued[0].at).Round(time.Millisecond), total.Calls, st.TokensIssued, lifetimes,
				strings.Join(lives, " "), st.APIRejected, st)
			if st.ReuseDetected != 0 || st.TokenErrors != 0 {
				t.Errorf("server saw %d reused refresh tokens and %d failed token requests; want none", st.ReuseDetected, st.TokenErrors)
			}
			wantFamily(t, srv, g, false)
			// At most one refresh per lifetime (plus one for a run that ends just after a token
			// came due). Fewer is no fault: on a loaded machine refreshes take longer than
			// refreshTime and the run holds fewer lifetimes; but it must hold more than one.
			if n := len(issued); n < 2 || n > lifetimes+1 {
				t.Errorf("%d refreshes for %d token lifetimes; want 2 to %d", n, lifetimes, lifetimes+1)
			}
		})
	}
}

// TestStoresKilledHolder: a process that dies holding the grant's lease blocks the grant only
// until the lease lapses (at once for filestore.Store, whose flock the kernel releases); then the
// next refresh goes through, once, and the family lives.
func TestStoresKilledHolder(t *testing.T) {
	for _, k := range stKinds {
		t.Run(k.name, func(t *testing.T) {
			cfg := k.config(t)
			srv, g, s := stSetup(t, cfg, authserver.Options{AccessTokenLifespan: 2 * time.Second})
			hold := cfg
			hold.Mode, hold.HoldTTL = "hold", 2500*time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd, out := stStart(t, ctx, hold)
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
				t.Fatalf("holder said %q, want %q", line, "locked\n")
			}
			short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancelShort()
			if _, err := s.Lock(short, cfg.Key, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock while the holder lives = %v, want DeadlineExceeded", err)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()

			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret"}
			ts := e.TokenSource(ctx, nil, stClientOptions(s, cfg.Key)...)
			start := time.Now()
			tok, err := ts.TokenContext(ctx)
			if err != nil {
				t.Fatalf("Token after the holder died: %v", err)
			}
			t.Logf("got a token %v after the holder was killed", time.Since(start).Round(time.Millisecond))
			if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusOK {
				t.Errorf("API with the token: HTTP %d", got)
			}
			if st := srv.Stats(); st.TokensIssued != 1 || st.TokenRequests != 1 {
				t.Errorf("server stats %+v, want exactly one token request", st)
			}
			wantFamily(t, srv, g, false)
		})
	}
}

// TestStoresSaveFailsOnce: process A refreshes, and its Save fails (a connection reset):
// once, which the prompt retry on the same lease hides, or three times, across a backoff.
// Process B asks for a token meanwhile. A keeps the grant's lease until its token is saved,
// so B never sends the refresh token A spent: B gets A's token from the store, the server
// sees one token request, and the family lives. (Before, A released the lease after the
// failed save and B sent the spent refresh token: fosite revoked the family.)
func TestStoresSaveFailsOnce(t *testing.T) {
	for _, k := range stKinds {
		for _, fails := range []int32{1, 3} {
			t.Run(fmt.Sprintf("%s/%d failed saves", k.name, fails), func(t *testing.T) {
				cfg := k.config(t)
				srv, g, _ := stSetup(t, cfg, authserver.Options{AccessTokenLifespan: time.Hour})
				child := cfg
				child.TokenURL, child.APIURL, child.ClientID, child.Secret = srv.TokenURL, srv.APIURL, "app", "s3cret"
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()

				a := child
				a.Mode, a.FailSaves = "failsave", fails
				cmdA, outA, inA := stStartIO(t, ctx, a)
				rA := bufio.NewReader(outA)
				first, _ := rA.ReadString('\n')
				if want := fmt.Sprintf("first: %v\n", fails == 1); first != want {
					t.Errorf("process A said %q, want %q", first, want)
				}
				if st := srv.Stats(); st.TokenRequests != 1 {
					t.Fatalf("server saw %d token requests after A's refresh, want 1", st.TokenRequests)
				}

				b := child
				b.Mode = "once"
				cmdB, outB, _ := stStartIO(t, ctx, b)
				rB := bufio.NewReader(outB)
				if line, _ := rB.ReadString('\n'); line != "asking\n" {
					t.Fatalf("process B said %q, want %q", line, "asking\n")
				}
				// B now waits for the lease that A holds (when A's token is unsaved) or
				// has picked A's token up; not a timed assertion: a wider window for B.
				time.Sleep(300 * time.Millisecond)
				io.WriteString(inA, "go\n")

				for name, r := range map[string]*bufio.Reader{"A": rA, "B": rB} {
					line, _ := r.ReadString('\n')
					var res stOnceResult
					if err := json.Unmarshal([]byte(line), &res); err != nil {
						t.Fatalf("process %s said %q: %v", name, line, err)
					}
					if res.Err != "" || res.Status != http.StatusOK {
						t.Errorf("process %s: Token error %q, API status %d; want a token the API accepts", name, res.Err, res.Status)
					}
				}
				for _, cmd := range []*exec.Cmd{cmdA, cmdB} {
					if err := cmd.Wait(); err != nil {
						t.Errorf("child: %v", err)
					}
				}
				if st := srv.Stats(); st.TokenRequests != 1 || st.ReuseDetected != 0 {
					t.Errorf("server stats %+v, want one token request and no reused refresh token", st)
				}
				wantFamily(t, srv, g, false)
			})
		}
	}
}

// stClock is a clock that moves only when told to.
type stClock struct{ ns atomic.Int64 }

func newStClock() *stClock {
	c := &stClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *stClock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *stClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// stProxy forwards TCP connections to target until closed; then it refuses new ones and
// closes the ones it forwarded: the store becomes unreachable.
type stProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
}

func newStProxy(t *testing.T, target string) *stProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, u) {
				return
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *stProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

func (p *stProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestStoresUnreachable: when the store goes away, callers keep getting the token they hold
// while it is valid, then a clear error that names the store and holds no secret.
func TestStoresUnreachable(t *testing.T) {
	for _, k := range stKinds {
		t.Run(k.name, func(t *testing.T) {
			cfg := k.config(t)
			srv, _, _ := stSetup(t, cfg, authserver.Options{AccessTokenLifespan: 2 * time.Second})
			// This process reaches the store through a proxy it can cut (or, for files, a
			// directory it can replace with a file).
			var cut func()
			switch cfg.Kind {
			case "file":
				cut = func() {
					if err := os.Rename(cfg.Dir, cfg.Dir+".gone"); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(cfg.Dir, nil, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			case "redis":
				p := newStProxy(t, cfg.RedisAddr)
				cfg.RedisAddr = p.ln.Addr().String()
				cut = p.close
			case "postgres":
				u, err := pgxpool.ParseConfig(cfg.PostgresDSN)
				if err != nil {
					t.Fatal(err)
				}
				p := newStProxy(t, net.JoinHostPort(u.ConnConfig.Host, fmt.Sprint(u.ConnConfig.Port)))
				cfg.PostgresDSN = strings.Replace(cfg.PostgresDSN, fmt.Sprintf("%s:%d", u.ConnConfig.Host, u.ConnConfig.Port), p.ln.Addr().String(), 1)
				cut = p.close
			}
			s, closeStore, err := stOpen(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer closeStore()
			// The TokenSource runs on a clock of the test's, so that how long the steps
			// below take on a slow machine does not change which of them see a valid token.
			clock := newStClock()
			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret"}
			ts := e.TokenSource(context.Background(), nil, append(stClientOptions(s, cfg.Key), oauth2refresh.WithClock(clock.now))...)
			tok, err := ts.Token()
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			cut()
			if got, err := ts.Token(); err != nil || got.AccessToken != tok.AccessToken {
				t.Fatalf("Token with the store gone and the token valid = %v; want the token held", err)
			}
			// In the early-refresh window (200 ms before the token stops being served, 100
			// ms before its expiry): the token held is still served, while the background
			// refresh it starts fails on the store.
			clock.set(tok.Expiry.Add(-200 * time.Millisecond))
			for range 3 {
				if got, err := ts.Token(); err != nil || got.AccessToken != tok.AccessToken {
					t.Fatalf("Token with the store gone, in the early-refresh window = %v; want the token held", err)
				}
			}
			clock.set(tok.Expiry)
			_, err = ts.Token()
			if err == nil {
				t.Fatalf("Token after expiry with the store gone succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "oauth2refresh: token store: ") {
				t.Errorf("error %q does not say that the token store failed", err)
			}
			for _, secret := range []string{tok.AccessToken, tok.RefreshToken, "s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
			if st := srv.Stats(); st.TokenRequests != 1 {
				t.Errorf("server saw %d token requests, want 1", st.TokenRequests)
			}
		})
	}
}

// TestStoresCorruptFile: a token file truncated under a running service gives a clear error,
// sends no token request, and is left as it is.
func TestStoresCorruptFile(t *testing.T) {
	cfg := stKinds[0].config(t)
	srv, g, s := stSetup(t, cfg, authserver.Options{AccessTokenLifespan: 2 * time.Second})
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret"}
	ts := e.TokenSource(context.Background(), nil, stClientOptions(s, cfg.Key)...)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Dir, cfg.Key+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	truncated := b[:len(b)/2]
	if err := os.WriteFile(path, truncated, 0o600); err != nil {
		t.Fatal(err)
	}
	ts.Invalidate(tok)
	_, err = ts.Token()
	var ce *store.CorruptTokenError
	if !errors.As(err, &ce) || ce.Location != path {
		t.Fatalf("Token = %v, want a *CorruptTokenError for %s", err, path)
	}
	if strings.Contains(err.Error(), tok.RefreshToken) {
		t.Errorf("error quotes the refresh token: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(truncated) {
		t.Errorf("the truncated file was changed")
	}
	if st := srv.Stats(); st.TokenRequests != 1 {
		t.Errorf("server saw %d token requests, want 1", st.TokenRequests)
	}
	wantFamily(t, srv, g, false)
}
