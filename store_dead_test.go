package oauth2refresh_test

// Tests of dead grants under WithStore: the mark a refused refresh saves, what a source that
// finds it does, its revival, and what must not mark a grant dead.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// clockStart is the fake clock's start, as the stored format writes it.
const clockStart = "2030-01-02T03:04:05Z"

// deadMarkOf returns a dead mark as stores hold one, read from the stored format.
func deadMarkOf(t *testing.T, reason string) *oauth2.Token {
	t.Helper()
	m, _, err := store.Decode("g", "", []byte(`{"version":1,"dead":{"reason":"`+reason+`","at":"`+clockStart+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readGrantFile returns the filestore.Store file of grant "g" in dir, "" if there is none.
func readGrantFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "g.json"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deadView is what the tests compare of a *DeadGrantError.
type deadView struct {
	Key, Reason, At string
	Err             bool // Err is set
}

// asDead returns err's *DeadGrantError as a deadView, failing the test if there is none.
func asDead(t *testing.T, err error) deadView {
	t.Helper()
	var d *oauth2refresh.DeadGrantError
	if !errors.As(err, &d) {
		t.Fatalf("error %v (%T), want a *DeadGrantError", err, err)
	}
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("errors.Is(%v, ErrInvalidGrant) = false", err)
	}
	return deadView{d.Key, oauth2refresh.DeadReason(d), d.At.UTC().Format(time.RFC3339), d.Err != nil}
}

func TestWithStoreGrantDies(t *testing.T) {
	// A refresh the server refuses for the grant, or a refresh token known to be expired,
	// marks the grant dead in the store under the lease. Another source on the store then
	// reports it without sending anything, and so does the first after its backoff.
	ctx := context.Background()
	seed := func(rt string) *oauth2.Token { return &oauth2.Token{RefreshToken: rt} }
	tests := []struct {
		name     string
		seed     *oauth2.Token // the stored token; the server accepts only rt-0
		auth     oauth2refresh.AuthMethod
		gate     func(w http.ResponseWriter, r *http.Request) bool
		reason   string
		code     string // the Code of the *RequestError the first source gets, "" for none
		status   int
		requests int64
	}{
		{name: "invalid_grant", seed: seed("rt-old"), reason: oauth2refresh.ReasonInvalidGrant,
			code: "invalid_grant", status: 400, requests: 1},
		{name: "invalid_grant, AuthAutoDetect", seed: seed("rt-old"), auth: oauth2refresh.AuthAutoDetect,
			reason: oauth2refresh.ReasonInvalidGrant, code: "invalid_grant", status: 400, requests: 1},
		{name: "GitHub's bad_refresh_token, HTTP 200", seed: seed("rt-0"),
			gate: func(w http.ResponseWriter, r *http.Request) bool {
				io.WriteString(w, `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`)
				return false
			},
			reason: oauth2refresh.ReasonInvalidGrant, code: "bad_refresh_token", status: 200, requests: 1},
		{name: "refresh token expired", seed: seed("rt-0").WithExtra(map[string]any{"refresh_expiry": clockStart}),
			reason: oauth2refresh.ReasonRefreshTokenExpired, requests: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			rs.gate = tc.gate
			ep := rs.endpoint()
			ep.AuthMethod = tc.auth
			dir := t.TempDir()
			clock := newFakeClock()
			if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", tc.seed); err != nil {
				t.Fatal(err)
			}
			a := ep.TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now))
			_, err := a.Token()
			want := deadView{Key: "g", Reason: tc.reason, At: clockStart, Err: true}
			if diff := cmp.Diff(want, asDead(t, err)); diff != "" {
				t.Errorf("first source's DeadGrantError (-want +got):\n%s", diff)
			}
			// What callers of earlier versions looked for still holds.
			var re *oauth2refresh.RequestError
			var oe *oauth2.RetrieveError
			switch {
			case tc.code == "":
				if !errors.Is(err, oauth2refresh.ErrRefreshTokenExpired) {
					t.Errorf("errors.Is(%v, ErrRefreshTokenExpired) = false", err)
				}
			case !errors.As(err, &re) || re.Code != tc.code || re.StatusCode != tc.status:
				t.Errorf("errors.As(%v, *RequestError) = %+v, want Code %s, HTTP %d", err, re, tc.code, tc.status)
			case !errors.As(err, &oe) || oe.ErrorCode != tc.code:
				t.Errorf("errors.As(%v, *oauth2.RetrieveError) = %+v, want ErrorCode %s", err, oe, tc.code)
			}
			wantFile := `{"version":2,"dead":{"reason":"` + tc.reason + `","at":"` + clockStart + `"}}` + "\n"
			if diff := cmp.Diff(wantFile, readGrantFile(t, dir)); diff != "" {
				t.Errorf("stored file (-want +got):\n%s", diff)
			}

			// Another process: it reports the dead grant and sends nothing.
			var evs []event
			b := ep.TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"),
				oauth2refresh.WithClock(clock.now), oauth2refresh.WithEvents(func(ev event) {
					if ev.Kind == events.GrantDead || ev.Kind == events.RefreshFinished {
						ev.Err = errAny
						evs = append(evs, ev)
					}
				}))
			_, err = b.Token()
			want.Err = false
			if diff := cmp.Diff(want, asDead(t, err)); diff != "" {
				t.Errorf("second source's DeadGrantError (-want +got):\n%s", diff)
			}
			wantEvs := []event{
				{Kind: events.GrantDead, Key: "g", Outcome: events.OutcomeInvalidGrant, Err: errAny},
				{Kind: events.RefreshFinished, Key: "g", Trigger: events.TriggerFirst,
					Outcome: events.OutcomeInvalidGrant, Waiters: 1, Failures: 1, Err: errAny},
			}
			if diff := cmp.Diff(wantEvs, evs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("second source's events (-want +got):\n%s", diff)
			}

			// The first, after its backoff, reads the mark too.
			clock.advance(10 * time.Minute)
			_, err = a.Token()
			if diff := cmp.Diff(deadView{Key: "g", Reason: tc.reason, At: clockStart}, asDead(t, err)); diff != "" {
				t.Errorf("first source's DeadGrantError after its backoff (-want +got):\n%s", diff)
			}
			if n := rs.requests.Load(); n != tc.requests {
				t.Errorf("token requests = %d, want %d", n, tc.requests)
			}
			if diff := cmp.Diff(wantFile, readGrantFile(t, dir)); diff != "" {
				t.Errorf("stored file at the end (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithStoreRefusalNotDead(t *testing.T) {
	// Refusals that do not show the grant dead leave the stored token as it is: another source
	// still tries it. With AuthAutoDetect, an invalid_grant after the other way was refused
	// as invalid_client does not either: which way the server takes is unknown.
	ctx := context.Background()
	tests := []struct {
		name  string
		auth  oauth2refresh.AuthMethod
		reply func(w http.ResponseWriter, r *http.Request)
		sent  int64 // token requests per source
	}{
		{name: "invalid_scope", reply: func(w http.ResponseWriter, r *http.Request) {
			respond(w, 400, "application/json", `{"error":"invalid_scope"}`)
		}, sent: 1},
		{name: "invalid_client", reply: func(w http.ResponseWriter, r *http.Request) {
			respond(w, 401, "application/json", `{"error":"invalid_client"}`)
		}, sent: 1},
		{name: "invalid_request", reply: func(w http.ResponseWriter, r *http.Request) {
			respond(w, 400, "application/json", `{"error":"invalid_request"}`)
		}, sent: 1},
		{name: "400 without an error object", reply: func(w http.ResponseWriter, r *http.Request) {
			respond(w, 400, "text/html", `<html>Bad Request</html>`)
		}, sent: 1},
		{name: "server_error", reply: func(w http.ResponseWriter, r *http.Request) {
			respond(w, 500, "application/json", `{"error":"server_error"}`)
		}, sent: 1},
		{name: "AuthAutoDetect, invalid_grant after invalid_client", auth: oauth2refresh.AuthAutoDetect,
			reply: func(w http.ResponseWriter, r *http.Request) {
				if _, _, basic := r.BasicAuth(); basic {
					respond(w, 401, "application/json", `{"error":"invalid_client"}`)
					return
				}
				respond(w, 400, "application/json", `{"error":"invalid_grant"}`)
			}, sent: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				n.Add(1)
				if got := r.PostForm.Get("refresh_token"); got != "rt-0" {
					t.Errorf("refresh_token = %q, want rt-0", got)
				}
				tc.reply(w, r)
			})
			ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret, AuthMethod: tc.auth}
			dir := t.TempDir()
			seed := &oauth2.Token{RefreshToken: "rt-0"}
			if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", seed); err != nil {
				t.Fatal(err)
			}
			stored := readGrantFile(t, dir)
			for i := int64(1); i <= 2; i++ {
				ts := ep.TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"))
				_, err := ts.Token()
				if err == nil {
					t.Fatal("Token succeeded")
				}
				if d := (*oauth2refresh.DeadGrantError)(nil); errors.As(err, &d) {
					t.Errorf("source %d: %v, a *DeadGrantError", i, err)
				}
				if got := n.Load(); got != i*tc.sent {
					t.Errorf("token requests after source %d = %d, want %d", i, got, i*tc.sent)
				}
			}
			if got := readGrantFile(t, dir); got != stored {
				t.Errorf("stored file = %s, want it unchanged: %s", got, stored)
			}
		})
	}
}

func TestWithStoreDeadGrantRevived(t *testing.T) {
	// SaveToken over the mark revives the grant: a source that found it dead picks the new
	// token up at its next flight (Invalidate(nil) ends the backoff), and refreshes it later.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	dir := t.TempDir()
	clock := newFakeClock()
	store := &filestore.Store{Dir: dir}
	if err := oauth2refresh.SaveToken(ctx, store, "g", &oauth2.Token{RefreshToken: "rt-old"}); err != nil {
		t.Fatal(err)
	}
	a := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now))
	b := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now))
	for _, ts := range []*oauth2refresh.TokenSource{a, b} {
		if _, err := ts.Token(); err == nil {
			t.Fatal("Token of a dead grant succeeded")
		}
	}
	if n := rs.requests.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	seed := &oauth2.Token{AccessToken: "at-new", TokenType: "Bearer", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	if err := oauth2refresh.SaveToken(ctx, store, "g", seed); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []*oauth2refresh.TokenSource{a, b} {
		ts.Invalidate(nil)
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-new" {
			t.Fatalf("Token after the grant was seeded anew = %v, %v; want at-new", tok, err)
		}
	}
	clock.advance(2 * time.Hour)
	for _, ts := range []*oauth2refresh.TokenSource{a, b} {
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
			t.Fatalf("Token after at-new expired = %v, %v; want at-1", tok, err)
		}
	}
	if n := rs.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if rs.isRevoked() {
		t.Error("the grant was revoked")
	}
}

func TestWithStoreHostileDeadMember(t *testing.T) {
	// A token response with members named "dead" and "oauth2refresh.dead" cannot kill the
	// grant: they are kept in "extra" like any other member, and the token works.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 60)
	mark := map[string]any{"reason": "invalid_grant", "at": clockStart}
	rs.onIssue = func(r *http.Request, tok map[string]any) { tok["dead"], tok["oauth2refresh.dead"] = mark, mark }
	dir := t.TempDir()
	clock := newFakeClock()
	if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	src := func() *oauth2refresh.TokenSource {
		return rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now))
	}
	a, b := src(), src()
	if tok, err := a.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}
	var stored map[string]any
	if err := json.Unmarshal([]byte(readGrantFile(t, dir)), &stored); err != nil {
		t.Fatal(err)
	}
	extra, _ := stored["extra"].(map[string]any)
	if _, ok := stored["dead"]; ok || extra["dead"] == nil || extra["oauth2refresh.dead"] == nil {
		t.Errorf("stored %v, want the members in extra and no dead mark", stored)
	}
	if tok, err := b.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("second source's Token = %v, %v; want at-1, picked up", tok, err)
	}
	clock.advance(time.Minute)
	if tok, err := b.Token(); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("second source's Token after at-1 expired = %v, %v; want at-2", tok, err)
	}
	if n := rs.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

func TestWithStoreLeaseLostNoResurrection(t *testing.T) {
	// The lease lapsed while the source refreshed; meanwhile another process marked the grant
	// dead, or deleted it. The source's new lease finds that: it saves nothing back, reports
	// it, and keeps reporting it without sending anything.
	ctx := context.Background()
	tests := []struct {
		name     string
		setup    func(t *testing.T, fs *faultStore)
		wantFile string
		check    func(t *testing.T, err error)
	}{
		{name: "marked dead", setup: func(t *testing.T, fs *faultStore) { fs.stolen = deadMarkOf(t, oauth2refresh.ReasonInvalidGrant) },
			wantFile: `{"version":2,"dead":{"reason":"invalid_grant","at":"` + clockStart + `"}}` + "\n",
			check: func(t *testing.T, err error) {
				if diff := cmp.Diff(deadView{Key: "g", Reason: oauth2refresh.ReasonInvalidGrant, At: clockStart}, asDead(t, err)); diff != "" {
					t.Errorf("DeadGrantError (-want +got):\n%s", diff)
				}
			}},
		{name: "deleted", setup: func(t *testing.T, fs *faultStore) { fs.deleteOnLost = true },
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), `token store: saving grant "g": deleted from the store`) {
					t.Errorf("error %v, want one saying the grant was deleted", err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			dir := t.TempDir()
			fs := &faultStore{Store: &filestore.Store{Dir: dir}}
			tc.setup(t, fs)
			clock := newFakeClock()
			if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
				t.Fatal(err)
			}
			fs.lostSave.Store(1)
			ts := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now))
			for i := range 2 {
				_, err := ts.Token()
				tc.check(t, err)
				if diff := cmp.Diff(tc.wantFile, readGrantFile(t, dir)); diff != "" {
					t.Errorf("stored file after Token %d (-want +got):\n%s", i+1, diff)
				}
				ts.Invalidate(nil)
			}
			if n := rs.requests.Load(); n != 1 {
				t.Errorf("token requests = %d, want 1", n)
			}
		})
	}
}

func TestWithStoreDeadKeepsHeldToken(t *testing.T) {
	// A background refresh whose save finds the grant marked dead meanwhile leaves the token
	// held in place: it is served until it stops being servable, then the error is returned.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	dir := t.TempDir()
	fs := &faultStore{Store: &filestore.Store{Dir: dir}}
	fs.stolen = deadMarkOf(t, oauth2refresh.ReasonInvalidGrant)
	clock := newFakeClock()
	held := &oauth2.Token{AccessToken: "at-0", TokenType: "Bearer", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour), ExpiresIn: 3600}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", held); err != nil {
		t.Fatal(err)
	}
	fs.lostSave.Store(1)
	finished := make(chan event, 1)
	ts := rs.endpoint().TokenSource(ctx, held, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.WithEvents(func(ev event) {
			if ev.Kind == events.RefreshFinished {
				finished <- ev
			}
		}))
	clock.advance(time.Hour - 30*time.Second) // in the early-refresh window
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("Token = %v, %v; want at-0", tok, err)
	}
	if ev := <-finished; ev.Outcome != events.OutcomeInvalidGrant {
		t.Errorf("background refresh outcome %v, want invalid_grant", ev.Outcome)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-0" {
		t.Errorf("Token after the background refresh found the grant dead = %v, %v; want at-0, still servable", tok, err)
	}
	clock.advance(time.Minute)
	_, err := ts.Token()
	if diff := cmp.Diff(deadView{Key: "g", Reason: oauth2refresh.ReasonInvalidGrant, At: clockStart}, asDead(t, err)); diff != "" {
		t.Errorf("DeadGrantError once at-0 expired (-want +got):\n%s", diff)
	}
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestWithStoreDeletedNotResurrected(t *testing.T) {
	// A grant deleted from the store (another process's Manager forgot it) is not saved back
	// by a source that saw it there and still holds its token: the source sends nothing. A
	// token of its own, when nothing was ever stored, is still saved; seeding the grant again
	// brings it back.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	dir := t.TempDir()
	clock := newFakeClock()
	src := func(tok *oauth2.Token) *oauth2refresh.TokenSource {
		return rs.endpoint().TokenSource(ctx, tok, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now))
	}
	a, b := src(&oauth2.Token{RefreshToken: "rt-0"}), src(nil)
	if tok, err := a.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token of a source given a token, nothing stored = %v, %v; want at-1", tok, err)
	}
	if tok, err := b.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token of a second source = %v, %v; want at-1", tok, err)
	}
	if err := (&filestore.Store{Dir: dir}).Delete(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour)
	for name, ts := range map[string]*oauth2refresh.TokenSource{"a": a, "b": b} {
		if _, err := ts.Token(); err == nil || !strings.Contains(err.Error(), `token store: refreshing grant "g": deleted from the store`) {
			t.Errorf("source %s: Token of a deleted grant = %v, want an error saying it was deleted", name, err)
		}
	}
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if got := readGrantFile(t, dir); got != "" {
		t.Errorf("stored file = %s, want none: the grant was saved back", got)
	}
	seed := &oauth2.Token{RefreshToken: rs.currentRT()}
	if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", seed); err != nil {
		t.Fatal(err)
	}
	b.Invalidate(nil)
	if tok, err := b.Token(); err != nil || tok.AccessToken != "at-2" {
		t.Errorf("Token after the grant was seeded again = %v, %v; want at-2", tok, err)
	}
}

func TestWithStoreDeadMarkNotSaved(t *testing.T) {
	// The save of the mark fails: the grant is still reported dead, the failure is an event,
	// the stored token is left as it was, and the next source asks the server again.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	dir := t.TempDir()
	fs := &faultStore{Store: &filestore.Store{Dir: dir}}
	clock := newFakeClock()
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-old"}); err != nil {
		t.Fatal(err)
	}
	stored := readGrantFile(t, dir)
	fs.failSave.Store(1)
	var failed []event
	a := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.WithEvents(func(ev event) {
			if ev.Kind == events.PersistFailed {
				failed = append(failed, ev)
			}
		}))
	_, err := a.Token()
	if diff := cmp.Diff(deadView{Key: "g", Reason: oauth2refresh.ReasonInvalidGrant, At: clockStart, Err: true}, asDead(t, err)); diff != "" {
		t.Errorf("DeadGrantError (-want +got):\n%s", diff)
	}
	if len(failed) != 1 || failed[0].Outcome != events.OutcomeStore || failed[0].Err == nil ||
		!strings.Contains(failed[0].Err.Error(), `marking dead grant "g": store down`) {
		t.Errorf("events.PersistFailed = %+v, want one, events.OutcomeStore, saying the mark was not saved", failed)
	}
	if got := readGrantFile(t, dir); got != stored {
		t.Errorf("stored file = %s, want it unchanged: %s", got, stored)
	}
	b := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now))
	_, err = b.Token()
	if diff := cmp.Diff(deadView{Key: "g", Reason: oauth2refresh.ReasonInvalidGrant, At: clockStart, Err: true}, asDead(t, err)); diff != "" {
		t.Errorf("second source's DeadGrantError (-want +got):\n%s", diff)
	}
	if n := rs.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if got, want := readGrantFile(t, dir), `{"version":2,"dead":{"reason":"invalid_grant","at":"`+clockStart+`"}}`+"\n"; got != want {
		t.Errorf("stored file = %s, want %s", got, want)
	}
}
