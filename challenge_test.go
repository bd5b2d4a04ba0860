package oauth2refresh_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkit/oauth2refresh"
)

type challenge = oauth2refresh.Challenge

// TestParseChallenges: the challenges of WWW-Authenticate fields (RFC 9110 §11.6.1), several
// to a field as servers and intermediaries join them (§5.3), read up to a syntax error.
func TestParseChallenges(t *testing.T) {
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	nonce := challenge{Scheme: "DPoP", Params: p("error", "use_dpop_nonce", "error_description", "Resource server requires nonce in DPoP proof")}
	tests := []struct {
		name   string
		fields []string
		want   []challenge
	}{
		{"none", nil, nil},
		{"empty", []string{""}, nil},
		{"RFC 9110 §11.6.1 example", []string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
			[]challenge{{Scheme: "Newauth", Params: p("realm", "apps", "type", "1", "title", `Login to "apps"`)}, {Scheme: "Basic", Params: p("realm", "simple")}}},
		{"Bearer and DPoP joined", []string{`Bearer realm="api", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`},
			[]challenge{{Scheme: "Bearer", Params: p("realm", "api")}, nonce}},
		{"Bearer and DPoP in two fields", []string{`Bearer realm="api"`, `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`},
			[]challenge{{Scheme: "Bearer", Params: p("realm", "api")}, nonce}},
		{"DPoP first", []string{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", Bearer realm="api"`},
			[]challenge{nonce, {Scheme: "Bearer", Params: p("realm", "api")}}},
		{"token values, case, white space", []string{"dpop  ERROR = use_dpop_nonce ,\tAlgs=\"ES256 RS256\""},
			[]challenge{{Scheme: "dpop", Params: p("error", "use_dpop_nonce", "algs", "ES256 RS256")}}},
		{"token68", []string{`Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Negotiate, Bearer x=y`},
			[]challenge{{Scheme: "Basic", Token68: "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}, {Scheme: "Negotiate"}, {Scheme: "Bearer", Params: p("x", "y")}}},
		{"empty list elements", []string{` , ,Basic realm="a" ,, ,Bearer,`},
			[]challenge{{Scheme: "Basic", Params: p("realm", "a")}, {Scheme: "Bearer"}}},
		{"repeated name: the first", []string{`DPoP error="use_dpop_nonce", error="invalid_token"`},
			[]challenge{{Scheme: "DPoP", Params: p("error", "use_dpop_nonce")}}},
		{"a look-alike parameter", []string{`DPoP error="invalid_token", foo_error="use_dpop_nonce"`},
			[]challenge{{Scheme: "DPoP", Params: p("error", "invalid_token", "foo_error", "use_dpop_nonce")}}},
		{"quoted comma and escapes", []string{`DPoP error_description="a, b=\"c\" \\ d", error=use_dpop_nonce`},
			[]challenge{{Scheme: "DPoP", Params: p("error_description", `a, b="c" \ d`, "error", "use_dpop_nonce")}}},
		{"syntax error: what precedes is kept", []string{`DPoP error="use_dpop_nonce", algs=ES256 RS256, Bearer`, `Basic realm="b"`},
			[]challenge{{Scheme: "DPoP", Params: p("error", "use_dpop_nonce", "algs", "ES256")}, {Scheme: "Basic", Params: p("realm", "b")}}},
		{"unterminated quoted-string", []string{`Bearer, DPoP error="use_dpop_nonce`},
			[]challenge{{Scheme: "Bearer"}, {Scheme: "DPoP"}}},
		{"control character in a quoted-string", []string{"DPoP error=\"use\x01\""}, []challenge{{Scheme: "DPoP"}}},
		{"not a challenge", []string{`"DPoP" error="use_dpop_nonce"`, `=x`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, oauth2refresh.ParseChallenges(tc.fields)); diff != "" {
				t.Errorf("ParseChallenges(%q) (-want +got):\n%s", tc.fields, diff)
			}
		})
	}
}
