package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// checkOutput fails the test unless out matches every pattern, and contains none of secrets
// nor anything that looks like a fosite token ("ory_at_...", "ory_rt_...").
func checkOutput(t *testing.T, out string, patterns []string, secrets ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("output does not match %q", p)
		}
	}
	for i, s := range append(secrets, "ory_at_", "ory_rt_") {
		if strings.Contains(out, s) {
			t.Errorf("output contains secret %d of %d (the last two are fosite's token prefixes)", i+1, len(secrets)+2)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// lastMatch returns the first group of the last match of pattern in s, or "".
func lastMatch(s, pattern string) string {
	all := regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1][1]
}

// checkDir fails the test unless dir holds exactly the token file of the demo's grant, mode
// 0600, and its lock file, and those of the grants named keys (no temporary file left
// behind), and returns the demo grant's stored token.
func checkDir(t *testing.T, dir string, keys ...string) *oauth2.Token {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"demo.json", "demo.json.lock"}
	for _, k := range keys {
		want = append(want, k+".json", k+".json.lock")
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files in the token directory (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(tokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %#o; want 0600", fi.Mode().Perm())
	}
	tok, err := (&filestore.Store{Dir: dir}).Load(context.Background(), storeKey)
	if err != nil || tok == nil {
		t.Fatalf("loading the stored token: %v, %v", tok, err)
	}
	return tok
}

func TestDemoLocal(t *testing.T) {
	const secret = "demo s3cret/+&é"
	dir := t.TempDir()
	var out bytes.Buffer
	c := config{out: &out, getenv: func(string) string { return "" }, lifespan: 3 * time.Second,
		before: 2500 * time.Millisecond, after: time.Second, every: 100 * time.Millisecond, tenants: 2 * time.Second,
		secret: secret, dir: dir}
	if err := run(context.Background(), c); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	o := out.String()
	checkOutput(t, o, []string{
		`(?m)^authorization server  ory/fosite at http://127\.0\.0\.1:\d+`,
		`(?m)^signed in +refresh token #[0-9a-f]{6} saved with SaveToken to the filestore\.Store in ` + regexp.QuoteMeta(dir) + `$`,
		`(?m)^1\. .*\n   token file holds refresh token #[0-9a-f]{6}, no access token yet\n   refreshed: `,
		`(?m)^   refreshed: access token #[0-9a-f]{6} for [23]s, refresh token rotated to #[0-9a-f]{6}, saved by the store$`,
		`(?m)^   API: hello user-1, client demo-app may read your profile$`,
		`(?m)^   (\d+) API calls, \d+ OK, [1-9]\d* refreshes$`,
		`(?m)^2\. restart: .* resumes from demo\.json\n   token file holds refresh token #[0-9a-f]{6}`,
		`(?m)^   token endpoint: invalid_grant`,
		`(?m)^   its refresh fails with errors\.Is\(err, oauth2refresh\.ErrInvalidGrant\)`,
		`(?m)^   the store marks the grant dead \(invalid_grant\) in demo\.json: a process loading it gets the error, and sends nothing$`,
		`(?m)^4\. two tenants through an oauth2refresh\.Manager in each of two replicas sharing the filestore\.Store, for 2s$`,
		`(?m)^   signed in: acme \(refresh token #[0-9a-f]{6}\) and globex \(#[0-9a-f]{6}\), each saved with Grant\.SaveToken$`,
		`(?m)^   replica [12] acme   refreshed: access token #[0-9a-f]{6} for [23]s, refresh token rotated to #[0-9a-f]{6}, saved by the store$`,
		`(?m)^   replica [12] acme   access token #[0-9a-f]{6} picked up from the store, no token request$`,
		`(?m)^   replica [12] acme   refreshed in the background: access token #[0-9a-f]{6} for [23]s, refresh token rotated to #[0-9a-f]{6}, saved by the store$`,
		`(?m)^   replica [12] acme   access token #[0-9a-f]{6} picked up from the store in the background, no token request$`,
		`(?m)^   acme   \d+ API calls, \d+ OK, \d+ of them retried after a 401 \(fosite revokes an access token when it rotates\); [1-9]\d* refreshes and [1-9]\d* pickups$`,
		`(?m)^   globex \d+ API calls, [1-9]\d* OK until the revocation; [1-9]\d* refreshes and [1-9]\d* pickups\n` +
			`          OnDead fired once in each of 2 replicas: time to ask globex to sign in again$`,
		`(?m)^   the server got \d+ token requests in this step: \d+ refreshes and 1 refused, globex's after its revocation$`,
		// The replayed token, the app's refresh after the revocation and globex's refresh
		// after its revocation: nothing else refused.
		`(?m)^server saw \d+ token requests \(\d+ refreshes, 3 refused\)`,
		`\ntoken file +` + regexp.QuoteMeta(tokenFile(dir)) + ` \(mode 0600\)\n$`,
	}, secret)
	// Every API call succeeded: "N API calls, N OK".
	for _, m := range regexp.MustCompile(`(?m)^   (\d+) API calls, (\d+) OK`).FindAllStringSubmatch(o, -1) {
		if m[1] != m[2] {
			t.Errorf("%s API calls but %s OK", m[1], m[2])
		}
	}

	// The restart resumed from the last token saved before it: the new TokenSource served its
	// access token, if still valid, or refreshed with its refresh token; either way the API
	// calls after the restart all succeeded (checked above).
	before, after, ok := strings.Cut(o, "\n2. restart")
	if !ok {
		t.Fatal("no restart in the output")
	}
	lastAT := lastMatch(before, `refreshed: access token (#[0-9a-f]{6})`)
	lastRT := lastMatch(before, `refresh token rotated to (#[0-9a-f]{6})`)
	m := regexp.MustCompile(`token file holds refresh token (#[0-9a-f]{6})(?: and access token (#[0-9a-f]{6}))?`).FindStringSubmatch(after)
	if m == nil || m[1] != lastRT || (m[2] != "" && m[2] != lastAT) {
		t.Errorf("after the restart the token file holds %q; want refresh token %s and access token %s or none", m, lastRT, lastAT)
	}
	if m != nil && m[2] != "" && !strings.Contains(after, "access token "+m[2]+" picked up from the store, no token request") {
		t.Errorf("the restart did not pick up the stored access token %s", m[2])
	}

	_, tenants, ok := strings.Cut(o, "\n4. ")
	if !ok {
		t.Fatal("no step 4 in the output")
	}
	checkTenants(t, tenants)

	// Every refresh the server made is one the output tells of: no replica refreshed a grant
	// that another one had refreshed (it picks the token up from the store instead).
	told := len(refreshLine.FindAllString(o, -1))
	if m := regexp.MustCompile(`(?m)^server saw \d+ token requests \((\d+) refreshes`).FindStringSubmatch(o); m == nil || m[1] != fmt.Sprint(told) {
		t.Errorf("the server made %v refreshes; the output tells of %d", m, told)
	}

	// The token files hold the grants' marks, and the last token the demo saw of acme's.
	checkDir(t, dir, tenantKeys...)
	store := &filestore.Store{Dir: dir}
	acme, err := store.Load(context.Background(), "acme")
	if want := lastMatch(tenants, `acme   refreshed[^:]*: .*refresh token rotated to (#[0-9a-f]{6})`); err != nil || acme == nil || short(acme.RefreshToken) != want {
		t.Errorf("acme.json: %v; want refresh token %s", err, want)
	}
	// The server is gone: a request would fail otherwise than with a *DeadGrantError.
	later := oauth2refresh.NewManager(&oauth2refresh.Endpoint{TokenURL: "http://127.0.0.1:1/token", ClientID: clientID}, store, nil)
	for _, key := range []string{storeKey, "globex"} {
		var d *oauth2refresh.DeadGrantError
		if _, err := later.Grant(key).Token(); !errors.As(err, &d) || deadReason(d) != "invalid_grant" {
			t.Errorf("%s's grant from %s.json: %v; want a *DeadGrantError, invalid_grant", key, key, err)
		}
	}
}

// refreshLine matches a line that tells of a refresh, in steps 1 to 4.
var refreshLine = regexp.MustCompile(`(?m)^   (?:replica [12] (?:acme|globex) +)?refreshed(?: in the background)?: access token #`)

// checkTenants checks step 4 of the output, with early refresh on: every token a replica
// refreshed (in the background, after the first) is picked up once by the other replica, and
// every token picked up is one the other replica refreshed before: across the replicas, each
// grant is refreshed once per token lifetime. acme's calls all succeed; globex's grant works
// until its revocation, then OnDead fires once in each replica, in one because its refresh was
// refused, in the other from the store's mark, and the server got one refused request, no other.
func checkTenants(t *testing.T, o string) {
	t.Helper()
	if m := regexp.MustCompile(`(?m)^   acme   (\d+) API calls, (\d+) OK, \d+ of them .*; (\d+) refreshes and (\d+) pickups$`).FindStringSubmatch(o); m == nil || m[1] != m[2] || m[3] != m[4] {
		t.Errorf("acme: %q; want every API call OK, and as many pickups as refreshes", m)
	}
	if m := regexp.MustCompile(`(?m)^   globex \d+ API calls, \d+ OK until the revocation; (\d+) refreshes and (\d+) pickups$`).FindStringSubmatch(o); m == nil || m[1] != m[2] {
		t.Errorf("globex: %q; want as many pickups as refreshes", m)
	}
	type token struct{ key, at string }
	refreshedBy := map[token]string{} // the replica that refreshed a token
	pickedBy := map[token]string{}    // the replica that picked it up
	counts := map[string]int{}        // refreshes and pickups per tenant, and acme's in the background
	lines := regexp.MustCompile(`(?m)^   (replica [12]) (acme|globex) +(refreshed(?: in the background)?: access token|access token) (#[0-9a-f]{6})( picked up from the store in the background)?`)
	for _, m := range lines.FindAllStringSubmatch(o, -1) {
		replica, tok := m[1], token{m[2], m[4]}
		if m[3] != "access token" {
			if r, ok := refreshedBy[tok]; ok {
				t.Errorf("%s access token %s refreshed by %s and %s", tok.key, tok.at, r, replica)
			}
			refreshedBy[tok] = replica
			counts[tok.key+" refreshes"]++
			if tok.key == "acme" && m[3] != "refreshed: access token" {
				counts["acme in the background"]++
			}
			continue
		}
		switch r, ok := refreshedBy[tok]; {
		case !ok:
			t.Errorf("%s access token %s picked up by %s before a replica refreshed it", tok.key, tok.at, replica)
		case r == replica:
			t.Errorf("%s access token %s picked up by %s, which refreshed it", tok.key, tok.at, replica)
		case pickedBy[tok] != "":
			t.Errorf("%s access token %s picked up twice", tok.key, tok.at)
		}
		pickedBy[tok] = replica
		counts[tok.key+" pickups"]++
	}
	for tok, r := range refreshedBy {
		if pickedBy[tok] == "" {
			t.Errorf("%s access token %s refreshed by %s, never picked up by the other replica", tok.key, tok.at, r)
		}
	}
	// Tokens live 3 s: acme's are refreshed in the background 1.25 s into their life, or
	// sooner; step 4 runs for 2 s and on until both replicas hold acme's newest token.
	if counts["acme in the background"] < 2 {
		t.Errorf("acme refreshed %d times in the background; want 2 at least", counts["acme in the background"])
	}
	for _, key := range tenantKeys {
		want := fmt.Sprintf("%d refreshes and %d pickups", counts[key+" refreshes"], counts[key+" pickups"])
		if !regexp.MustCompile(`(?m)^   ` + key + ` .*; ` + want + `$`).MatchString(o) {
			t.Errorf("%s: no summary of %s, the lines above", key, want)
		}
	}
	// The server got the refreshes told of, and globex's refused one: replica 2 sent nothing
	// when it found globex dead.
	if m := regexp.MustCompile(`(?m)^   the server got (\d+) token requests in this step: (\d+) refreshes and 1 refused`).FindStringSubmatch(o); m == nil ||
		m[2] != fmt.Sprint(len(refreshedBy)) || m[1] != fmt.Sprint(len(refreshedBy)+1) {
		t.Errorf("server: %q; want %d refreshes, one per token told of, and one request more, refused", m, len(refreshedBy))
	}

	before, after, ok := strings.Cut(o, "\n   globex's administrator disconnects the app at the provider: fosite revokes globex's grant\n")
	if !ok {
		t.Fatal("globex's grant is not revoked in the output")
	}
	if strings.Contains(before, "OnDead") || strings.Contains(o, "acme   OnDead") || strings.Contains(o, "acme   API call") {
		t.Errorf("OnDead or a failed API call before the revocation, or for acme")
	}
	if regexp.MustCompile(`globex (refreshed|access token)`).MatchString(after) {
		t.Errorf("a replica got a token for globex after its revocation")
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^   (replica [12]) globex OnDead: (.*)$`).FindAllStringSubmatch(after, -1) {
		got = append(got, m[2])
	}
	slices.Sort(got)
	want := []string{
		"dead grant (invalid_grant): its refresh was refused; marked dead in the store",
		"dead grant (invalid_grant): read from the mark in the store, no token request sent",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OnDead for globex (-want +got):\n%s", diff)
	}
}

// TestDemoLocalTempDir runs the local demo as `go run` does, without API calls to speak of:
// its token file is in a temporary directory, which is gone at the end.
func TestDemoLocalTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out bytes.Buffer
	c := defaultConfig(&out, func(string) string { return "" })
	c.before, c.after, c.tenants = 0, 0, 0
	if err := run(context.Background(), c); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	m := regexp.MustCompile(`\ntoken file +(\S+) \(mode 0600\), removed with its temporary directory\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output does not end with the token file's path:\n%s", out.String())
	}
	if dir := filepath.Dir(m[1]); filepath.Dir(dir) != tmp {
		t.Errorf("token file %s; want it in a directory of $TMPDIR (%s)", m[1], tmp)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("$TMPDIR holds %d entries after the demo; want none", len(entries))
	}
}

// TestDemoProvider runs the real-provider mode against the fosite server standing in for a
// provider: a post-only client, the token file kept between two runs, then used by a third
// process, as after a restart.
func TestDemoProvider(t *testing.T) {
	srv, err := authserver.Start(authserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const secret = "pr0vider&secret+/"
	if err := srv.AddClient(authserver.Client{ID: "real-app", Secret: secret, AuthMethod: authserver.ClientSecretPost,
		Scopes: []string{"read", "write"}}); err != nil {
		t.Fatal(err)
	}
	g, err := srv.IssueRefreshToken("real-app", "read", "write")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tokens") // created by the FileStore
	env := map[string]string{
		"OAUTH2REFRESH_TOKEN_URL":     srv.TokenURL,
		"OAUTH2REFRESH_CLIENT_ID":     "real-app",
		"OAUTH2REFRESH_CLIENT_SECRET": secret,
		"OAUTH2REFRESH_REFRESH_TOKEN": g.RefreshToken,
		"OAUTH2REFRESH_AUTH_METHOD":   "post",
		"OAUTH2REFRESH_SCOPES":        "read,write",
		"OAUTH2REFRESH_API_URL":       srv.APIURL,
		"OAUTH2REFRESH_TOKEN_DIR":     dir,
	}
	file := regexp.QuoteMeta(tokenFile(dir))
	const (
		refreshed = `(?m)^   refreshed: access token #[0-9a-f]{6} for 3[56]\d\ds, refresh token rotated to #[0-9a-f]{6}, saved by the store$`
		pickedUp  = `(?m)^   access token #[0-9a-f]{6} picked up from the store, no token request$`
	)
	for i, want := range [][]string{
		{
			`(?m)^token file +refresh token #[0-9a-f]{6} saved with SaveToken to ` + file + `$`,
			`(?m)^1\. .*\n   token file holds refresh token #[0-9a-f]{6}, no access token yet\n` + refreshed[4:],
		},
		{
			`(?m)^token file +` + file + ` exists: resuming from it$`,
			`(?m)^1\. .*\n   token file holds refresh token #[0-9a-f]{6} and access token #[0-9a-f]{6} \((59m\d+(\.\d)?s|1h0m0s) left\)\n` + pickedUp[4:],
		},
	} {
		var out bytes.Buffer
		c := defaultConfig(&out, func(k string) string { return env[k] })
		if err := run(context.Background(), c); err != nil {
			t.Fatalf("run %d: %v\noutput:\n%s", i+1, err, out.String())
		}
		checkOutput(t, out.String(), append(want,
			`(?m)^provider +http://127\.0\.0\.1:\d+/oauth2/token, client real-app, client_secret_post$`,
			refreshed,
			`(?m)^   1 API calls, 1 OK, `,
			// The restart makes no token request: the stored token is still valid.
			`(?m)^2\. restart: .*\n   token file holds refresh token #[0-9a-f]{6} and access token #[0-9a-f]{6} .*\n`+pickedUp[4:],
			`(?m)^3\. skipped against a real provider`,
			`\ntoken file +`+file+` \(mode 0600\) holds the newest token; delete it when done\n$`,
		), secret, g.RefreshToken)
	}
	// Run 1 refreshed twice (no access token yet, then after Invalidate), run 2 once.
	if st := srv.Stats(); st.TokenRequests != 3 || st.TokenErrors != 0 {
		t.Errorf("server stats %+v; want 3 token requests, no error", st)
	}

	// The token file holds the newest token: a new process resumes from it with no request,
	// its access token works, and so does its refresh token; nothing was ever reused.
	stored := checkDir(t, dir)
	ctx := context.Background()
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "real-app", ClientSecret: secret, AuthMethod: oauth2refresh.AuthRequestBody}
	store := &filestore.Store{Dir: dir}
	ts := e.TokenSource(ctx, nil, oauth2refresh.WithStore(store, storeKey))
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("token from the store: %v", err)
	}
	if tok.AccessToken != stored.AccessToken || srv.TokenRequests() != 3 {
		t.Errorf("a new TokenSource sent %d token requests and serves access token %s; want none and the stored %s",
			srv.TokenRequests()-3, short(tok.AccessToken), short(stored.AccessToken))
	}
	if status, _, err := get(ctx, oauth2.NewClient(ctx, ts), srv.APIURL); err != nil || status != http.StatusOK {
		t.Errorf("API call with the stored access token: HTTP %d, %v", status, err)
	}
	ts.Invalidate(tok)
	if _, err := ts.Token(); err != nil {
		t.Errorf("refreshing with the stored refresh token: %v", err)
	}
	if got, _ := store.Load(ctx, storeKey); got == nil || got.RefreshToken == stored.RefreshToken {
		t.Error("the refresh was not saved to the token file")
	}
	if st := srv.Stats(); st.ReuseDetected != 0 || st.TokenErrors != 0 || st.APIRejected != 0 {
		t.Errorf("server stats %+v; want no reuse, no token error, no API call refused", st)
	}
}

// TestDemoProviderErrors: what the real-provider mode says when it cannot start. No request
// is sent: the token endpoint is not listening.
func TestDemoProviderErrors(t *testing.T) {
	const garbage = `{"version":1,"refresh_token":"rt-secret` // truncated
	tests := []struct {
		name      string
		file      string // content of the token file; none when empty
		env       map[string]string
		wantErr   string
		wantTyped bool // a *store.CorruptTokenError
	}{
		{name: "no refresh token", wantErr: "set OAUTH2REFRESH_REFRESH_TOKEN"},
		{name: "corrupt token file", file: garbage, env: map[string]string{"OAUTH2REFRESH_REFRESH_TOKEN": "rt-secret"},
			wantErr: "demo.json): ", wantTyped: true},
		{name: "unknown auth method", env: map[string]string{"OAUTH2REFRESH_AUTH_METHOD": "private_key_jwt"}, wantErr: "want basic, post, none or auto"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{
				"OAUTH2REFRESH_TOKEN_URL": "http://127.0.0.1:1/token",
				"OAUTH2REFRESH_CLIENT_ID": "app",
				"OAUTH2REFRESH_TOKEN_DIR": dir,
			}
			for k, v := range tc.env {
				env[k] = v
			}
			if tc.file != "" {
				if err := os.WriteFile(tokenFile(dir), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := run(context.Background(), defaultConfig(&out, func(k string) string { return env[k] }))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run: %v; want an error containing %q", err, tc.wantErr)
			}
			var ce *store.CorruptTokenError
			if errors.As(err, &ce) != tc.wantTyped {
				t.Errorf("run: %v is a *CorruptTokenError: %v; want %v", err, !tc.wantTyped, tc.wantTyped)
			}
			checkOutput(t, out.String()+err.Error(), nil, "rt-secret")
			if tc.file != "" {
				if b, err := os.ReadFile(tokenFile(dir)); err != nil || string(b) != tc.file {
					t.Errorf("token file changed: %q, %v", b, err)
				}
			}
		})
	}
}

func TestParseAuthMethod(t *testing.T) {
	tests := []struct {
		in, secret string
		want       oauth2refresh.AuthMethod
		wantErr    bool
	}{
		{"", "s", oauth2refresh.AuthAutoDetect, false},
		{"", "", oauth2refresh.AuthNone, false},
		{"auto", "s", oauth2refresh.AuthAutoDetect, false},
		{"basic", "s", oauth2refresh.AuthBasic, false},
		{"client_secret_basic", "s", oauth2refresh.AuthBasic, false},
		{"POST", "s", oauth2refresh.AuthRequestBody, false},
		{"client_secret_post", "s", oauth2refresh.AuthRequestBody, false},
		{"none", "", oauth2refresh.AuthNone, false},
		{"private_key_jwt", "s", 0, true},
	}
	for _, tc := range tests {
		got, err := parseAuthMethod(tc.in, tc.secret)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseAuthMethod(%q, secret set %v) = %v, %v; want %v, error %v", tc.in, tc.secret != "", got, err, tc.want, tc.wantErr)
		}
	}
}

func TestShort(t *testing.T) {
	if got := short("ory_rt_secret"); !regexp.MustCompile(`^#[0-9a-f]{6}$`).MatchString(got) {
		t.Errorf("short = %q; want # and 6 hex digits", got)
	}
	if got := short(""); got != "(none)" {
		t.Errorf("short(\"\") = %q", got)
	}
}
