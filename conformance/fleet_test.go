package conformance_test

// A fleet: several OS processes share many grants through an oauth2refresh.Manager each, over
// each Store (filestore.Store, Redis, PostgreSQL), against the fosite server, which rotates refresh
// tokens and revokes the family when one comes back. The processes are this test binary run
// again with OAUTH2REFRESH_FLEET_CHILD set (see init below); the authorization server, and a
// proxy in front of its token endpoint that tells which grant each request is for, run in the
// parent test process. Parent and children talk through the children's stdin and stdout.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// flChildEnv is the environment variable that makes this test binary a fleet process.
const flChildEnv = "OAUTH2REFRESH_FLEET_CHILD"

// flConfig is what a fleet process is told, as JSON in flChildEnv.
type flConfig struct {
	Store      stConfig // the store to open (its Key is unused)
	Process    int      // 0, 1, 2, ...: sent with each token request, for the log
	Grants     int      // the grants are flKey(0) ... flKey(Grants-1)
	Goroutines int      // how many goroutines call the API

	// The fleet's client is public (no secret): fosite checks a client secret against its
	// bcrypt hash under its one lock, about 30 ms a request under the race detector, which
	// would make the server, not the fleet, the subject of this test. Client authentication
	// is proved on its own (TestFositeAuthMethods, TestFositeRevokeRefreshToken).
	TokenURL, RevocationURL, APIURL, ClientID string

	// Revoked and Dead are the keys of the grants that die during the run: revoked through
	// the Manager by one process, and revoked at the server behind the fleet's back.
	Revoked, Dead string
}

// flKey is the key of the fleet's i-th grant.
func flKey(i int) string { return fmt.Sprintf("tenant-%04d", i) }

// flResult is what a fleet process reports on its last stdout line, after "result ".
type flResult struct {
	// Calls counts API calls; Failures those that failed, except calls on the two dying
	// grants that failed because they are dead (Dying counts those).
	Calls, Failures, Dying int64
	Errors                 []string // the first few failures
	// Final is, for each of the two dying grants, what a last Grant.TokenContext returned
	// after the load stopped: "dead <reason>" for a *DeadGrantError, else the error or "a token".
	Final map[string]string
}

func init() { runChild(flChildEnv, "fleet process", flChild) }

// flTag adds the process number to each token request, for the log.
type flTag struct {
	base    http.RoundTripper
	process string
}

func (t flTag) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Fleet-Process", t.process)
	return t.base.RoundTrip(r)
}

// flChild is a fleet process. It calls the API with every grant in turn (and often with the
// two that die) from cfg.Goroutines goroutines until told "stop" on stdin; "revoke KEY"
// revokes a grant through the Manager. It says on stdout: "dead KEY REASON server|store" when OnDead is called (server: the
// DeadGrantError carries what the server answered this process), "saw-revoked KEY" the first
// time an API call fails with ErrGrantRevoked, "revoked KEY" when a Revoke asked for returned,
// and at the end "result JSON" (flResult).
func flChild(cfg flConfig) error {
	ctx := context.Background()
	s, closeStore, err := stOpen(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer closeStore()
	var outMu sync.Mutex // guards stdout
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	e := &oauth2refresh.Endpoint{
		TokenURL: cfg.TokenURL, RevocationURL: cfg.RevocationURL, ClientID: cfg.ClientID,
		HTTPClient: &http.Client{Transport: flTag{transport, fmt.Sprint(cfg.Process)}},
	}
	m := oauth2refresh.NewManager(e, s, &oauth2refresh.ManagerOptions{
		SourceOptions: flOptions(),
		OnDead: func(key string, d *oauth2refresh.DeadGrantError) {
			from := "store"
			if d.Err != nil {
				from = "server"
			}
			say("dead %s %s %s", key, deadReason(d), from)
		},
	})
	// Each grant's client, held as an app holds it, on a transport that keeps enough
	// connections to the API open.
	apiCtx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: transport})
	clients := make([]*http.Client, cfg.Grants)
	for i := range clients {
		clients[i] = m.Grant(flKey(i)).Client(apiCtx)
	}

	stop := make(chan struct{})
	go func() {
		defer close(stop) // "stop", or the parent is gone
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmd, key, _ := strings.Cut(sc.Text(), " ")
			switch cmd {
			case "stop":
				return
			case "revoke":
				if err := m.Grant(key).Revoke(ctx); err != nil {
					say("revoke-failed %s %v", key, err)
				} else {
					say("revoked %s", key)
				}
			}
		}
	}()

	var (
		res        = flResult{Final: map[string]string{}}
		mu         sync.Mutex // guards res.Failures and res.Errors
		calls      atomic.Int64
		dying      atomic.Int64
		sawRevoked atomic.Bool
		next       atomic.Int64
		wg         sync.WaitGroup
	)
	fail := func(key, msg string) {
		mu.Lock()
		defer mu.Unlock()
		res.Failures++
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, key+": "+msg)
		}
	}
	next.Store(int64(cfg.Process * cfg.Grants / 3)) // the processes start on different grants
	var hot [2]int
	for i := range cfg.Grants {
		switch flKey(i) {
		case cfg.Revoked:
			hot[0] = i
		case cfg.Dead:
			hot[1] = i
		}
	}
	for range cfg.Goroutines {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Every grant in turn, and one call in 20 with one of the two grants that die:
				// those are in demand in every process, as a big tenant's would be.
				var i int
				if n := calls.Add(1); n%20 == 0 {
					i = hot[n/20%2]
				} else {
					i = int(next.Add(1) % int64(cfg.Grants))
				}
				key := flKey(i)
				dies := key == cfg.Revoked || key == cfg.Dead
				resp, err := clients[i].Get(cfg.APIURL)
				switch {
				case err == nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == http.StatusOK:
					case dies && resp.StatusCode == http.StatusUnauthorized:
						dying.Add(1)
					default:
						fail(key, fmt.Sprintf("API answered HTTP %d", resp.StatusCode))
					}
				case dies && errors.Is(err, oauth2refresh.ErrInvalidGrant):
					dying.Add(1)
					if key == cfg.Revoked && errors.Is(err, oauth2refresh.ErrGrantRevoked) && !sawRevoked.Swap(true) {
						say("saw-revoked %s", key)
					}
				default:
					fail(key, err.Error())
				}
			}
		})
	}
	wg.Wait()
	res.Calls, res.Dying = calls.Load(), dying.Load()
	for _, key := range []string{cfg.Revoked, cfg.Dead} {
		_, err := m.Grant(key).TokenContext(ctx)
		var d *oauth2refresh.DeadGrantError
		switch {
		case errors.As(err, &d):
			res.Final[key] = "dead " + deadReason(d)
		case err != nil:
			res.Final[key] = err.Error()
		default:
			res.Final[key] = "a token"
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	say("result %s", b)
	return nil
}

// deadReason says why err's grant is dead, as errors.Is tells, in the words of the stored
// mark: "revoked", "refresh_token_expired", or "invalid_grant" when the server refused it.
func deadReason(err error) string {
	switch {
	case errors.Is(err, oauth2refresh.ErrGrantRevoked):
		return "revoked"
	case errors.Is(err, oauth2refresh.ErrRefreshTokenExpired):
		return "refresh_token_expired"
	}
	return "invalid_grant"
}

// flOptions are the TokenSource options of every grant: tokens of 2–3 s are served until
// 100 ms before they expire, and refreshed in the background from 200 ms before that (the
// stWindow of the stores tests).
func flOptions() []oauth2refresh.Option {
	return []oauth2refresh.Option{
		oauth2refresh.ExpiryMargin(100 * time.Millisecond),
		oauth2refresh.EarlyRefresh(200 * time.Millisecond),
	}
}

// flRequest is one token request the log saw.
type flRequest struct {
	start, end time.Time     // when it came in, and when its answer was sent
	process    string        // the X-Fleet-Process of the request
	status     int           // the HTTP status of the answer
	expiresIn  time.Duration // of the token issued
}

// flLog is a proxy in front of a token endpoint that records, for each grant, the token
// requests made for it. It knows a grant by its refresh tokens: the first one, given to add,
// and each one the server issued for it since.
type flLog struct {
	URL string
	// changed receives (without blocking) after each request recorded.
	changed chan struct{}

	mu      sync.Mutex     // guards the fields below
	grantOf map[string]int // refresh token -> grant
	reqs    [][]flRequest  // for each grant, in the order answered
	unknown int            // requests with a refresh token the log never saw
}

func newFlLog(t *testing.T, tokenURL string, grants int) *flLog {
	l := &flLog{changed: make(chan struct{}, 1), grantOf: map[string]int{}, reqs: make([][]flRequest, grants)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := flRequest{start: time.Now(), process: r.Header.Get("X-Fleet-Process")}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, _ := url.ParseQuery(string(body))
		req, err := http.NewRequestWithContext(r.Context(), r.Method, tokenURL, strings.NewReader(string(body)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rec.status, rec.end = resp.StatusCode, time.Now()
		var tr struct {
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int64  `json:"expires_in"`
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(answer, &tr); err != nil || tr.RefreshToken == "" || tr.ExpiresIn <= 0 {
				t.Errorf("token log: token response without refresh token or expires_in (%v)", err)
			}
			rec.expiresIn = time.Duration(tr.ExpiresIn) * time.Second
		}
		l.mu.Lock()
		if g, ok := l.grantOf[form.Get("refresh_token")]; ok {
			l.reqs[g] = append(l.reqs[g], rec)
			if tr.RefreshToken != "" {
				l.grantOf[tr.RefreshToken] = g
			}
		} else {
			l.unknown++
		}
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// add makes rt, a grant's first refresh token, known as grant g's.
func (l *flLog) add(rt string, g int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grantOf[rt] = g
}

// requests returns the requests recorded for each grant, and how many were for no grant.
func (l *flLog) requests() ([][]flRequest, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]flRequest, len(l.reqs))
	for i, r := range l.reqs {
		out[i] = slices.Clone(r)
	}
	return out, l.unknown
}

// issued returns how many tokens the server issued for each grant.
func (l *flLog) issued() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := make([]int, len(l.reqs))
	for i, rs := range l.reqs {
		for _, r := range rs {
			if r.status == http.StatusOK {
				n[i]++
			}
		}
	}
	return n
}

// flEvent is one line a fleet process said.
type flEvent struct {
	process int
	line    string
}

// TestManagerFleet proves, for each Store, what a fleet of services sharing many grants
// relies on. 3 OS processes share 1,000 grants, each process through its own Manager over the
// same Store, and call a protected API with every grant in turn from 16 goroutines each (and
// one call in 20 with one of two grants that are in demand everywhere), against fosite with refresh-token rotation and reuse detection and access tokens of 2–3 s.
// The grants are started with Grant.SaveToken and their refresh token only. The run goes by what
// the server saw, not by the clock:
//
//  1. The fleet refreshes every grant once (each gets its first access token).
//  2. Then one grant is revoked through Grant.Revoke in process 0 (RFC 7009 at fosite, and
//     the mark in the Store), and another one is revoked at fosite behind the fleet's back,
//     while the fleet goes on, until every process has reported the second one through
//     OnDead and seen an API call with the first one fail with ErrGrantRevoked, and every
//     other grant has been refreshed again (rotated) since the two were revoked.
//  3. The processes stop.
//
// Proved, from the token requests counted per grant by a proxy in front of fosite:
//   - each grant was refreshed once per token lifetime across the fleet: no refresh of a
//     grant came before the token it replaced was due (a second process refreshing it beside
//     the first would); fosite's reuse detection never tripped (no token request of a live
//     grant was refused, and every live grant's family is alive at the end); and no API call
//     failed, in any process, with any grant but the two revoked ones;
//   - the grant revoked through the Manager is never saved back: no token request was made
//     for it after its Revoke returned and none was refused (fosite refuses every refresh
//     token of a revoked family), every process gets ErrGrantRevoked for it at the end, OnDead
//     reported it in the two other processes, and the Store still holds the mark afterwards
//     (its stored value, read past the Store, is the mark and holds no token; a new Manager
//     reports it, without a token request);
//   - the grant revoked behind the fleet's back cost exactly one refused token request, its
//     last one (fosite's only reuse detection of the run: it counts a refresh token of a
//     revoked family as reused), and OnDead reported it in all 3 processes, once each, at
//     most one of them with the server's answer (the others read the mark from the Store).
//
// fosite handles one request at a time, so the server bounds how fast the fleet goes: on 2
// cores under -race, 10 to 20 s per store. How long it takes changes nothing it checks.
func TestManagerFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const (
		processes  = 3
		grants     = 1000
		goroutines = 16
		lifespan   = 3 * time.Second
		// A slow token endpoint widens every race: the refresh token sent has been rotated,
		// and the old access token revoked, while the response is on its way.
		tokenDelay = 20 * time.Millisecond
		revokedIdx = 1
		deadIdx    = 2
	)
	revokedKey, deadKey := flKey(revokedIdx), flKey(deadIdx)
	for _, k := range stKinds {
		t.Run(k.name, func(t *testing.T) {
			started := time.Now()
			cfg := k.config(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			srv := startFosite(t, authserver.Options{AccessTokenLifespan: lifespan, TokenDelay: tokenDelay})
			if err := srv.AddClient(authserver.Client{ID: "app", AuthMethod: authserver.None, Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			s, closeStore, err := stOpen(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer closeStore()
			log := newFlLog(t, srv.TokenURL, grants)

			// Each grant is authorized, and the app starts it with its refresh token.
			e := &oauth2refresh.Endpoint{TokenURL: log.URL, RevocationURL: srv.RevocationURL, ClientID: "app"}
			m := oauth2refresh.NewManager(e, s, nil)
			fg := make([]authserver.Grant, grants)
			for i := range fg {
				if fg[i], err = srv.IssueRefreshToken("app", "read"); err != nil {
					t.Fatal(err)
				}
				log.add(fg[i].RefreshToken, i)
			}
			var (
				seed    sync.WaitGroup
				next    atomic.Int64
				seedErr = make([]error, grants)
			)
			for range 16 {
				seed.Go(func() {
					for i := int(next.Add(1) - 1); i < grants; i = int(next.Add(1) - 1) {
						seedErr[i] = m.Grant(flKey(i)).SaveToken(ctx, &oauth2.Token{RefreshToken: fg[i].RefreshToken})
					}
				})
			}
			seed.Wait()
			if err := errors.Join(seedErr...); err != nil {
				t.Fatalf("starting the grants: %v", err)
			}
			seeded := time.Now()
			t.Logf("%d grants seeded in %v", grants, seeded.Sub(started).Round(time.Millisecond))

			events := make(chan flEvent)
			stdins := make([]io.WriteCloser, processes)
			cmds := make([]*exec.Cmd, processes)
			for p := range processes {
				child := flConfig{Store: cfg, Process: p, Grants: grants, Goroutines: goroutines,
					TokenURL: log.URL, RevocationURL: srv.RevocationURL, APIURL: srv.APIURL, ClientID: "app",
					Revoked: revokedKey, Dead: deadKey}
				var out io.Reader
				cmds[p], out, stdins[p] = flStart(t, ctx, child)
				go func() {
					sc := bufio.NewScanner(out)
					sc.Buffer(nil, 1<<20)
					for sc.Scan() {
						select {
						case events <- flEvent{p, sc.Text()}:
						case <-ctx.Done():
							return
						}
					}
				}()
			}

			// What the processes said, gathered by waitFor.
			var (
				onDead  = map[string][]string{} // key -> "process reason server|store", per OnDead call
				saw     = map[int]bool{}        // processes that saw ErrGrantRevoked
				revoked time.Time               // when process 0 said its Revoke returned
				results = make([]*flResult, processes)
			)
			handle := func(ev flEvent) {
				what, rest, _ := strings.Cut(ev.line, " ")
				switch what {
				case "dead":
					key, how, _ := strings.Cut(rest, " ")
					onDead[key] = append(onDead[key], fmt.Sprintf("%d %s", ev.process, how))
				case "saw-revoked":
					saw[ev.process] = true
				case "revoked":
					revoked = time.Now()
				case "result":
					var r flResult
					if err := json.Unmarshal([]byte(rest), &r); err != nil {
						t.Fatalf("process %d said %q: %v", ev.process, ev.line, err)
					}
					results[ev.process] = &r
				default:
					t.Fatalf("process %d said %q", ev.process, ev.line)
				}
			}
			// waitFor handles what the processes say until done holds. It is checked after each
			// line and after each token request.
			waitFor := func(what string, done func() bool) {
				t.Helper()
				for !done() {
					select {
					case ev := <-events:
						handle(ev)
					case <-log.changed:
					case <-ctx.Done():
						grantsBy := map[int]int{} // tokens issued -> grants
						for _, n := range log.issued() {
							grantsBy[n]++
						}
						t.Fatalf("timed out waiting for %s; grants by tokens issued %v; OnDead calls %v, processes that saw ErrGrantRevoked %v, revoked at %v; server %+v",
							what, grantsBy, onDead, saw, revoked, srv.Stats())
					}
				}
			}
			everyGrant := func(want func(i, n int) bool) func() bool {
				return func() bool {
					for i, n := range log.issued() {
						if !want(i, n) {
							return false
						}
					}
					return true
				}
			}

			waitFor("a first token for every grant", everyGrant(func(_, n int) bool { return n >= 1 }))
			first := time.Now()
			t.Logf("every grant had its first token %v later; server %+v", first.Sub(seeded).Round(time.Millisecond), srv.Stats())

			if st := srv.Stats(); st.TokenErrors != 0 {
				t.Fatalf("before any grant was revoked, the server refused %d token requests (%d refresh tokens reused); want none", st.TokenErrors, st.ReuseDetected)
			}

			// Two grants die while the fleet rotates the others.
			after := log.issued()
			if err := srv.RevokeGrant(fg[deadIdx].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(stdins[0], "revoke "+revokedKey+"\n"); err != nil {
				t.Fatal(err)
			}
			reportedBy := func(key, reason string) int {
				n := 0
				for _, d := range onDead[key] {
					if strings.Contains(d, " "+reason+" ") {
						n++
					}
				}
				return n
			}
			var died time.Time
			waitFor("the revoke, every process's report of both dead grants, and every other grant rotated", func() bool {
				if died.IsZero() && !revoked.IsZero() && len(saw) == processes && reportedBy(deadKey, "invalid_grant") >= processes {
					died = time.Now()
				}
				return !died.IsZero() && everyGrant(func(i, n int) bool { return i == revokedIdx || i == deadIdx || n > after[i] })()
			})
			for p := range processes {
				if _, err := io.WriteString(stdins[p], "stop\n"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor("the results", func() bool { return !slices.Contains(results, nil) })
			for p, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Errorf("process %d: %v", p, err)
				}
			}
			stopped := time.Now()

			// The processes: no failed API call, and both dead grants dead for each.
			var calls, dying int64
			for p, r := range results {
				calls, dying = calls+r.Calls, dying+r.Dying
				if r.Calls == 0 || r.Failures != 0 {
					t.Errorf("process %d: %d of %d API calls failed: %q", p, r.Failures, r.Calls, r.Errors)
				}
				want := map[string]string{revokedKey: "dead " + "revoked", deadKey: "dead " + "invalid_grant"}
				if diff := cmp.Diff(want, r.Final); diff != "" {
					t.Errorf("process %d: the dead grants at the end (-want +got):\n%s", p, diff)
				}
			}
			// OnDead: the grant refused at the server, once in each process, only one of
			// which got the refusal itself; the grant revoked through the Manager, at most
			// once in each, and in both processes that did not revoke it.
			for key, want := range map[string]int{deadKey: processes, revokedKey: processes - 1} {
				per := map[string]int{}
				for _, d := range onDead[key] {
					p, _, _ := strings.Cut(d, " ")
					per[p]++
				}
				for p, n := range per {
					if n > 1 {
						t.Errorf("OnDead called %d times for %s in process %s; want once", n, key, p)
					}
				}
				if got := len(per); got < want {
					t.Errorf("OnDead for %s in %d processes (%q); want at least %d", key, got, onDead[key], want)
				}
			}
			if got := reportedBy(deadKey, "invalid_grant"); got != processes {
				t.Errorf("OnDead for %s with reason %s: %q; want once in each of %d processes", deadKey, "invalid_grant", onDead[deadKey], processes)
			}
			// At most one process got the server's refusal. (The one that did may report the
			// Store's mark: when its refusal came on a Transport's retry after a 401, which
			// returns the 401 and not the error, the grant is reported by its next call.)
			if n := strings.Count(strings.Join(onDead[deadKey], "\n")+"\n", " server\n"); n > 1 {
				t.Errorf("OnDead for %s: %q; want at most one process to report the server's refusal, the others the Store's mark", deadKey, onDead[deadKey])
			}

			// The server, through the token log.
			reqs, unknown := log.requests()
			if unknown != 0 {
				t.Errorf("%d token requests with a refresh token the server never issued", unknown)
			}
			var issued, refused, early int
			byProcess := map[string]int{}
			for i, rs := range reqs {
				var prev *flRequest
				for j := range rs {
					r := &rs[j]
					byProcess[r.process]++
					if r.status != http.StatusOK {
						refused++
						if i != deadIdx {
							t.Errorf("grant %d: token request %d refused (HTTP %d)", i, j+1, r.status)
						}
						continue
					}
					issued++
					// No process starts refreshing a token before expires_in - stWindow after it
					// received it, which is after the log recorded it, and the server holds the
					// answer back tokenDelay more.
					if prev != nil {
						if due := prev.end.Add(prev.expiresIn - stWindow + tokenDelay); r.end.Before(due) {
							early++
							if early <= 5 {
								t.Errorf("grant %d: refresh %d came %v before the token it replaced was due: not once per lifetime", i, j+1, due.Sub(r.end))
							}
						}
					}
					prev = r
				}
			}
			if early > 5 {
				t.Errorf("%d refreshes in all came before the token they replaced was due", early)
			}
			st := srv.Stats()
			if int64(issued) != st.TokensIssued || int64(issued+refused) != st.TokenRequests || st.ReuseDetected > int64(refused) {
				t.Errorf("the token log saw %d tokens issued and %d refused; the server %+v", issued, refused, st)
			}
			// The grant refused behind the fleet's back: exactly one refused request, its last.
			dr := reqs[deadIdx]
			if n := len(dr); n == 0 || dr[n-1].status == http.StatusOK || refusedIn(dr) != 1 {
				t.Errorf("grant %s: token requests %v; want exactly one refused, the last", deadKey, statuses(dr))
			}
			// The grant revoked through the Manager: nothing sent after the Revoke returned,
			// nothing refused (fosite would refuse any refresh token of the revoked family).
			for _, r := range reqs[revokedIdx] {
				if r.status != http.StatusOK || !r.start.Before(revoked) {
					t.Errorf("grant %s: token request at %v (HTTP %d), after it was revoked at %v", revokedKey, r.start, r.status, revoked)
				}
			}
			for i, g := range fg {
				dead, err := srv.Revoked(g.ID)
				if err != nil {
					t.Fatal(err)
				}
				if want := i == revokedIdx || i == deadIdx; dead != want {
					t.Errorf("grant %d: fosite says revoked %v; want %v", i, dead, want)
				}
			}
			for p := range processes {
				if byProcess[fmt.Sprint(p)] == 0 {
					t.Errorf("process %d sent no token request: the fleet did not share the work", p)
				}
			}

			// The Store afterwards, read as it is stored: both grants' values are marks of the
			// stored-token format ({"version":N,"dead":{"reason":...,"at":...}}), with no
			// token in them.
			for key, reason := range map[string]string{revokedKey: "revoked", deadKey: "invalid_grant"} {
				raw, err := flRaw(ctx, cfg, key)
				if err != nil {
					t.Fatalf("reading %s's stored value: %v", key, err)
				}
				var v struct {
					Dead *struct {
						Reason string `json:"reason"`
					} `json:"dead"`
					AccessToken  *string `json:"access_token"`
					RefreshToken *string `json:"refresh_token"`
				}
				if err := json.Unmarshal(raw, &v); err != nil || v.Dead == nil || v.Dead.Reason != reason || v.AccessToken != nil || v.RefreshToken != nil {
					t.Errorf("%s's stored value (%d bytes, %v) is not a mark with reason %s and no token", key, len(raw), err, reason)
				}
			}
			// A new Manager finds both grants dead without asking the server, and reports them.
			var later []string
			m2 := oauth2refresh.NewManager(e, s, &oauth2refresh.ManagerOptions{SourceOptions: flOptions(),
				OnDead: func(key string, d *oauth2refresh.DeadGrantError) { later = append(later, key+" "+deadReason(d)) }})
			for key, want := range map[string]error{revokedKey: oauth2refresh.ErrGrantRevoked, deadKey: oauth2refresh.ErrInvalidGrant} {
				_, err := m2.Grant(key).TokenContext(ctx)
				var d *oauth2refresh.DeadGrantError
				if !errors.As(err, &d) || !errors.Is(err, want) {
					t.Errorf("a new Manager's token for %s: %v; want a *DeadGrantError matching %v", key, err, want)
				}
			}
			slices.Sort(later)
			if diff := cmp.Diff([]string{revokedKey + " " + "revoked", deadKey + " " + "invalid_grant"}, later); diff != "" {
				t.Errorf("a new Manager's OnDead calls (-want +got):\n%s", diff)
			}
			if got := srv.Stats().TokenRequests; got != st.TokenRequests {
				t.Errorf("a new Manager sent %d token requests for the dead grants; want none", got-st.TokenRequests)
			}

			t.Logf("%d processes × %d goroutines, %d grants: seeded in %v; then a first token for each after %v, both revoked grants reported dead after %v, every other one rotated again and the fleet stopped after %v (%v in all)",
				processes, goroutines, grants, seeded.Sub(started).Round(time.Millisecond), first.Sub(seeded).Round(time.Millisecond),
				died.Sub(seeded).Round(time.Millisecond), stopped.Sub(seeded).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
			t.Logf("%d API calls (%d on the dead grants), %d tokens issued (by process %v), %d refused; OnDead %v; server %+v",
				calls, dying, issued, byProcess, refused, onDead, st)
		})
	}
}

// refusedIn counts the refused requests of rs.
func refusedIn(rs []flRequest) int {
	n := 0
	for _, r := range rs {
		if r.status != http.StatusOK {
			n++
		}
	}
	return n
}

// statuses lists the HTTP statuses of rs.
func statuses(rs []flRequest) []int {
	var s []int
	for _, r := range rs {
		s = append(s, r.status)
	}
	return s
}

// flStart starts a fleet process with cfg, returning its stdout and stdin.
func flStart(t *testing.T, ctx context.Context, cfg flConfig) (*exec.Cmd, io.Reader, io.WriteCloser) {
	t.Helper()
	return startChild(t, ctx, flChildEnv, cfg)
}

// flRaw returns the value stored under key in the store cfg names, read past the Store: the
// file, the Redis key or the PostgreSQL row.
func flRaw(ctx context.Context, cfg stConfig, key string) ([]byte, error) {
	switch cfg.Kind {
	case "file":
		return os.ReadFile(filepath.Join(cfg.Dir, key+".json"))
	case "redis":
		rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
		defer rdb.Close()
		return rdb.Get(ctx, cfg.RedisPrefix+"{k:"+key+"}:token").Bytes()
	case "postgres":
		pool, err := pgxpool.New(ctx, cfg.PostgresDSN)
		if err != nil {
			return nil, err
		}
		defer pool.Close()
		var v string
		err = pool.QueryRow(ctx, `SELECT token FROM "`+cfg.PostgresTable+`" WHERE key = $1`, key).Scan(&v)
		return []byte(v), err
	}
	return nil, fmt.Errorf("unknown store kind %q", cfg.Kind)
}
