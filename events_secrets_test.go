package oauth2refresh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// tokenText matches the tokens of this test: tokenServer's at-N, rt-N and id-N, the echo
// server's, and the client secret.
var tokenText = regexp.MustCompile(`(at|rt|id)-[0-9]+|` + testSecret)

// errTexts returns the texts of err's chain: every error's message and %+v, and the fields of
// the package's response errors and of the oauth2.RetrieveError they convert to.
func errTexts(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error(), fmt.Sprintf("%+v", e))
		switch e := e.(type) {
		case *oauth2refresh.RequestError:
			out = append(out, e.Description, e.URI, string(e.Body), fmt.Sprint(e.Header))
		case *oauth2refresh.UnexpectedResponseError:
			out = append(out, string(e.Body), fmt.Sprint(e.Header))
			if e.Token != nil {
				out = append(out, e.Token.AccessToken, e.Token.RefreshToken)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		out = append(out, string(re.Body), re.ErrorDescription, re.ErrorURI, re.Response.Status, fmt.Sprint(re.Response.Header))
		if r := re.Response.Request; r != nil {
			out = append(out, r.URL.String(), fmt.Sprint(r.Header))
		}
	}
	return out
}

func TestEventsHoldNoTokenMaterial(t *testing.T) {
	// A full run: refreshes with rotation, a save and an OnNewToken that fail quoting the
	// token and the secret, a lost lease, a pickup by a second process, a 401 storm, and a
	// server that echoes the refresh token, the secret and the Authorization header in its
	// errors, a transport error quoting them, an OnNewToken that panics quoting the tokens.
	// Every event, and every line events.Log writes of them, is scanned.
	ctx := context.Background()
	hook, l, logs := recordEvents()
	clock := newFakeClock()
	clock.set(time.Now())

	rs := newTokenServer(t, "rt-0", 3600)
	var failing atomic.Bool
	rs.fail = func(int64) bool { return failing.Load() }
	fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	var hookFails atomic.Int32
	onNewToken := oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
		if hookFails.Add(-1) >= 0 {
			return fmt.Errorf("duplicate entry '%s' for %s (%s)", tok.RefreshToken, tok.AccessToken, testSecret)
		}
		return nil
	})
	a := rs.endpoint().TokenSource(ctx, nil, hook, onNewToken, oauth2refresh.WithClock(clock.now), oauth2refresh.WithStore(fs, "g"))

	// Refresh, with a save and OnNewToken failing once each, quoting.
	fs.quoteSave.Store(1)
	hookFails.Store(1)
	mustToken(t, a)
	// Rotation, with the lease lost once.
	clock.advance(2 * time.Hour)
	fs.lostSave.Store(1)
	mustToken(t, a)
	// Failures of the token endpoint, then of the store, quoting.
	clock.advance(2 * time.Hour)
	failing.Store(true)
	a.Token()
	failing.Store(false)
	clock.advance(10 * time.Minute)
	fs.quoteSave.Store(2)
	a.Token()
	clock.advance(10 * time.Minute)
	mustToken(t, a)
	// Another process picks the token up.
	b := rs.endpoint().TokenSource(ctx, nil, hook, oauth2refresh.WithClock(clock.now), oauth2refresh.WithStore(fs, "g"))
	mustToken(t, b)
	// A 401 storm on a.
	api := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return memResponse(r, http.StatusUnauthorized, "text/plain", "rejected "+r.Header.Get("Authorization")), nil
	})
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: a, Base: api}}
	for range 4 {
		resp, err := client.Get("https://api.example/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// The echo server.
	var n atomic.Int32
	echo := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		form := readForm(t, r)
		quoted := fmt.Sprintf("refresh_token=%s client_secret=%s auth=%s", form.Get("refresh_token"), testSecret, r.Header.Get("Authorization"))
		switch n.Add(1) {
		case 1:
			return memResponse(r, 400, "application/json", fmt.Sprintf(`{"error":"invalid_request","error_description":%q,"error_uri":"https://x/?%s"}`, quoted, form.Get("refresh_token"))), nil
		case 2:
			resp := memResponse(r, 500, "text/html", "<html>"+quoted+"</html>")
			resp.Header.Set("Retry-After", "60")
			resp.Header.Set("X-Echo", quoted)
			return resp, nil
		case 3:
			return nil, errors.New("dial: " + quoted)
		case 4:
			return memResponse(r, 200, "application/json", `{"access_token":"at-9000","token_type":"Bearer","refresh_token":"rt-9000","expires_in":3600}`), nil
		}
		return memResponse(r, 400, "application/json", `{"error":"invalid_grant","error_description":"`+quoted+`"}`), nil
	})
	var panics atomic.Int32
	c := memEndpoint(echo).TokenSource(ctx, &oauth2.Token{AccessToken: "at-7776", RefreshToken: "rt-7777", Expiry: clock.now().Add(-time.Hour)},
		hook, oauth2refresh.WithClock(clock.now), oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			if panics.Add(1) == 1 {
				panic("cannot store " + tok.AccessToken + " " + tok.RefreshToken)
			}
			return nil
		}))
	for range 6 {
		c.Token()
		clock.advance(10 * time.Minute)
	}

	evs := l.take()
	seen := map[events.Kind]bool{}
	for _, ev := range evs {
		seen[ev.Kind] = true
		texts := append([]string{fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev)}, errTexts(ev.Err)...)
		for _, s := range texts {
			if m := tokenText.FindString(s); m != "" {
				t.Errorf("event %v holds %q: %s", ev.Kind, m, s)
			}
		}
	}
	for k := events.RefreshStarted; k <= events.Waited; k++ {
		if !seen[k] {
			t.Errorf("the run fired no %v event: it does not scan them", k)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if m := tokenText.FindString(line); m != "" {
			t.Errorf("log line holds %q: %s", m, line)
		}
	}
	if len(evs) < 40 {
		t.Errorf("only %d events", len(evs))
	}
	if rs.isRevoked() {
		t.Error("the grant was revoked")
	}
}

// recordEvents returns the option that records a TokenSource's events in l and writes them
// with events.Log, at every level, as JSON lines to logs.
func recordEvents() (opt oauth2refresh.Option, l *eventLog, logs *bytes.Buffer) {
	l, logs = &eventLog{waits: true}, &bytes.Buffer{}
	logEvent := events.Log(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return oauth2refresh.WithEvents(func(ev event) { l.add(ev); logEvent(ev) }), l, logs
}

// runTexts returns where a run's secrets must not show: the texts of the errors it returned
// (see errTexts), of the events it fired, and each line events.Log wrote of them.
func runTexts(errs []error, evs []event, logs string) map[string]string {
	texts := map[string]string{}
	for i, err := range errs {
		for j, s := range errTexts(err) {
			texts[fmt.Sprintf("error %d text %d", i, j)] = s
		}
	}
	for i, ev := range evs {
		texts[fmt.Sprintf("event %d %v", i, ev.Kind)] = fmt.Sprintf("%+v %#v", ev, ev)
		for j, s := range errTexts(ev.Err) {
			texts[fmt.Sprintf("event %d %v Err text %d", i, ev.Kind, j)] = s
		}
	}
	for i, line := range strings.Split(logs, "\n") {
		texts[fmt.Sprintf("log line %d", i)] = line
	}
	return texts
}

// TestFlightErrorsHoldNoIDToken: a TokenSource whose Store (Load, Lock, Save, the save of a
// dead mark) and OnNewToken hook fail, or panic, quoting the tokens they know in every listed
// form, the new id_token of the token server's response among them, never gets any of the
// tokens into a returned error, an event or a log line; the errors still unwrap to the
// Store's clean cause.
func TestFlightErrorsHoldNoIDToken(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	withEvents, l, logs := recordEvents()
	rs := newTokenServer(t, "rt-0", 3600)
	rs.prefix = `x+/y=&"\é<>✓ ` // every listed form of the tokens differs
	fs := &filestore.Store{Dir: t.TempDir()}
	seed := &oauth2.Token{RefreshToken: "rt-0"}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", seed); err != nil {
		t.Fatal(err)
	}
	qs := &quotingStore{Store: fs}
	var hookFails, hookPanics atomic.Int32
	onNewToken := oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
		forms := strings.Join(secretForms(tokenSecrets(tok)...), "' '")
		if hookPanics.Add(-1) >= 0 {
			panic("cannot save '" + forms + "'")
		}
		if hookFails.Add(-1) >= 0 {
			return fmt.Errorf("%w (%w)", &mysqlError{"Error 1062: Duplicate entry '" + forms + "' for key 'tokens'"}, errStoreDown)
		}
		return nil
	})
	src := rs.endpoint().TokenSource(ctx, seed, withEvents, onNewToken, oauth2refresh.WithClock(clock.now), oauth2refresh.WithStore(qs, "g"))

	var errs []error
	// step runs one call after set, and wants it to fail with an error matching want (errAny:
	// any error), or to succeed when want is nil.
	step := func(name string, want error, set func()) {
		t.Helper()
		clock.advance(time.Minute) // past any backoff but the first's
		qs.loads.Store(0)
		qs.locks.Store(0)
		qs.saves.Store(0)
		hookFails.Store(0)
		hookPanics.Store(0)
		set()
		_, err := src.Token()
		if err != nil {
			errs = append(errs, err)
		}
		if (err != nil) != (want != nil) || err != nil && want != errAny && !errors.Is(err, want) {
			t.Fatalf("%s: Token: %v, want an error matching %v", name, err, want)
		}
	}
	step("a Load quoting the seed", errStoreDown, func() { qs.loads.Store(1) })
	step("at-1: both saves failing", errStoreDown, func() { qs.saves.Store(2) })
	step("at-1 saved, then the hook failing (a pending token's persist is tried once)", errStoreDown, func() { hookFails.Store(1) })
	step("at-1 handed out", nil, func() {})
	clock.advance(2 * time.Hour)
	step("a Load quoting at-1", errStoreDown, func() { qs.loads.Store(1) })
	step("a Lock quoting at-1", errStoreDown, func() { qs.locks.Store(1) })
	step("at-2: a save and a call of the hook failing once", nil, func() { qs.saves.Store(1); hookFails.Store(1) })
	clock.advance(2 * time.Hour)
	step("at-3: the hook panicking", errAny, func() { hookPanics.Store(1) })
	step("at-3 handed out", nil, func() {})
	clock.advance(2 * time.Hour)
	step("rt-3 refused, the dead mark's save failing", oauth2refresh.ErrInvalidGrant, func() {
		rs.mu.Lock()
		rs.current = "another"
		rs.mu.Unlock()
		qs.saves.Store(1)
	})

	var secrets []string
	for n := range 4 {
		for _, k := range []string{"at", "rt", "id"} {
			secrets = append(secrets, fmt.Sprintf("%s%s-%d", rs.prefix, k, n))
		}
	}
	evs := l.take()
	texts := runTexts(errs, evs, logs.String())
	leakCheck(t, texts, append(secretForms(secrets...), "rt-0"))
	var persists, redacted int
	for _, ev := range evs {
		if ev.Kind == events.PersistFailed {
			persists++
			if strings.Contains(ev.Err.Error(), "Duplicate entry '[redacted]'") {
				redacted++
			}
		}
	}
	if persists != 6 || redacted != 6 {
		t.Errorf("%d PersistFailed events, %d of them with the redacted quote, want 6 and 6", persists, redacted)
	}
	if rs.isRevoked() || rs.issued != 3 {
		t.Errorf("server: revoked %v, %d tokens issued, want 3", rs.isRevoked(), rs.issued)
	}
}
