package conformance_test

// Several OS processes share one grant through each Store (FileStore, Redis, PostgreSQL)
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
	"os"
	"os/exec"
	"path/filepath"
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
	pgstore "github.com/tokenkit/oauth2refresh/store/postgres"
	redisstore "github.com/tokenkit/oauth2refresh/store/redis"
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
	Mode                               string // "load": call the API; "hold": take the lease and wait to be killed
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

func init() {
	env := os.Getenv(stChildEnv)
	if env == "" {
		return
	}
	var cfg stConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad config:", err)
		os.Exit(3)
	}
	if err := stChild(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// stOpen opens the store cfg names. close releases its connections.
func stOpen(ctx context.Context, cfg stConfig) (s oauth2refresh.Store, close func(), err error) {
	switch cfg.Kind {
	case "file":
		return &oauth2refresh.FileStore{Dir: cfg.Dir}, func() {}, nil
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
	if err := oauth2refresh.SaveToken(context.Background(), s, cfg.Key, &oauth2.Token{RefreshToken: g.RefreshToken}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return srv, g, s
}

// stStart starts a child process with cfg.
func stStart(t *testing.T, ctx context.Context, cfg stConfig) (*exec.Cmd, io.Reader) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stChildEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
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
	return cmd, out
}

// TestStoresMultiProcess: 3 processes of 4 goroutines each call the protected API through a
// Transport for 5 s of 1–2 s tokens, sharing the grant through the store. No call fails, the
// family is never revoked, and the grant is refreshed about once per token lifetime in all,
// not once per process.
func TestStoresMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const (
		processes  = 3
		goroutines = 4
		duration   = 5 * time.Second
	)
	for _, k := range stKinds {
		t.Run(k.name, func(t *testing.T) {
			cfg := k.config(t)
			srv, g, _ := stSetup(t, cfg, authserver.Options{
				AccessTokenLifespan: 2 * time.Second,
				// A slow token endpoint widens every race: the refresh token sent has been
				// rotated, and the old access token revoked, while the response is on its way.
				TokenDelay: 50 * time.Millisecond,
			})
			child := cfg
			child.Mode, child.TokenURL, child.APIURL, child.ClientID, child.Secret = "load", srv.TokenURL, srv.APIURL, "app", "s3cret"
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
			var first, last time.Time // the span of all the processes' calls
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
				if first.IsZero() || r.Start.Before(first) {
					first = r.Start
				}
				if r.End.After(last) {
					last = r.End
				}
			}
			st := srv.Stats()
			// Tokens say expires_in 1 or 2 (fosite truncates), and are refreshed from 300 ms
			// before that: at least every 700 ms, at most every 1.9 s. The processes start one
			// after the other, each calls for duration, and its last call may end later still
			// on a slow machine: count the lifetimes over the span of all the calls.
			span := last.Sub(first)
			lifetimes := int64(span / (700 * time.Millisecond))
			t.Logf("%d processes × %d goroutines, calls over %v: %d API calls, %d refreshes (at most %d token lifetimes), %d API 401s retried; server %+v",
				processes, goroutines, span.Round(time.Millisecond), total.Calls, st.TokensIssued, lifetimes, st.APIRejected, st)
			if st.ReuseDetected != 0 || st.TokenErrors != 0 {
				t.Errorf("server saw %d reused refresh tokens and %d failed token requests; want none", st.ReuseDetected, st.TokenErrors)
			}
			wantFamily(t, srv, g, false)
			if st.TokensIssued > lifetimes+2 {
				t.Errorf("%d refreshes for at most %d token lifetimes: the processes did not share them", st.TokensIssued, lifetimes)
			}
			if st.TokensIssued < int64(duration/(2*time.Second)) {
				t.Errorf("only %d refreshes in %v of 2 s tokens", st.TokensIssued, duration)
			}
		})
	}
}

// TestStoresKilledHolder: a process that dies holding the grant's lease blocks the grant only
// until the lease lapses (at once for FileStore, whose flock the kernel releases); then the
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
	var ce *oauth2refresh.CorruptTokenError
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
