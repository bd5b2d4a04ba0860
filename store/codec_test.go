package store_test

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

func TestDecodeStoredToken(t *testing.T) {
	const secret = "SECRET-refresh-token"
	full := `{"version": 3, "access_token": "at", "refresh_token": "` + secret + `"}`
	tests := []struct {
		name, value string
		why         string // what the error says is wrong; "" for a value that decodes
		want        *oauth2.Token
		extra       map[string]any // the Extra values want has
		version     uint64
	}{
		{name: "complete", version: 7,
			value: `{"version":7,"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2030-01-02T03:04:05.000006Z","expires_in":3600}`,
			want: &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
				Expiry: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC), ExpiresIn: 3600}},
		{name: "extra, dpop_jkt and refresh_expiry", version: 2,
			value: `{"version":2,"refresh_token":"rt","dpop_jkt":"jkt","refresh_expiry":"2030-07-01T03:04:05Z","extra":{"id_token":"id","n":1.5,"o":{"a":[true,null]},"dpop_jkt":"not this one"}}`,
			want:  &oauth2.Token{RefreshToken: "rt"},
			extra: map[string]any{"id_token": "id", "n": 1.5, "o": map[string]any{"a": []any{true, nil}}, "dpop_jkt": "jkt",
				"refresh_expiry": "2030-07-01T03:04:05Z", "scope": nil}},
		{name: "extra null", value: `{"version":1,"refresh_token":"rt","extra":null}`, version: 1,
			want: &oauth2.Token{RefreshToken: "rt"}, extra: map[string]any{"id_token": nil}},
		{name: "refresh token only", value: `{"version":1,"refresh_token":"rt"}`, version: 1,
			want: &oauth2.Token{RefreshToken: "rt"}},
		{name: "whitespace and unknown members", value: "\n\t{\"version\": 2, \"access_token\": \"at\", \"scope\": \"x\", \"expiry\": null}\n", version: 2,
			want: &oauth2.Token{AccessToken: "at"}},
		{name: "empty", value: "", why: "empty"},
		{name: "blank", value: " \n", why: "empty"},
		{name: "truncated", value: full[:len(full)-8], why: fmt.Sprintf("truncated JSON (%d bytes)", len(full)-8)},
		{name: "garbage", value: "\x00\x01" + secret, why: "invalid JSON at byte 1 of 22"},
		{name: "wrong shape", value: `["` + secret + `"]`, why: "JSON of the wrong shape"},
		{name: "wrong member type", value: `{"version": "` + secret + `", "access_token": "at"}`, why: "JSON of the wrong shape: member version"},
		{name: "bad expiry", value: `{"version": 1, "access_token": "at", "expiry": "` + secret + `"}`, why: "JSON of the wrong shape"},
		{name: "trailing data", value: full + `{"version": 4}`, why: "data after the object"},
		{name: "trailing garbage", value: full + "x", why: "data after the object"},
		{name: "no version", value: `{"access_token": "at", "refresh_token": "` + secret + `"}`, why: "no version"},
		{name: "version 0", value: `{"version": 0, "access_token": "at"}`, why: "no version"},
		{name: "negative version", value: `{"version": -1, "access_token": "at"}`, why: "JSON of the wrong shape: member version"},
		{name: "no token", value: `{"version": 2, "token_type": "Bearer"}`, why: "neither access token nor refresh token"},
		{name: "null", value: `null`, why: "no version"},
		{name: "extra not an object", value: `{"version": 1, "access_token": "at", "extra": ["` + secret + `"]}`, why: "JSON of the wrong shape: member extra"},
		{name: "bad refresh_expiry", value: `{"version": 1, "access_token": "at", "refresh_expiry": "` + secret + `"}`, why: "JSON of the wrong shape"},
		{name: "dead mark without reason", value: `{"version": 1, "dead": {"at": "2030-01-02T03:04:05Z"}}`, why: "dead mark without a reason"},
		{name: "dead mark of the wrong shape", value: `{"version": 1, "dead": "` + secret + `"}`, why: "JSON of the wrong shape: member dead"},
		{name: "dead mark null", value: `{"version": 1, "dead": null}`, why: "neither access token nor refresh token nor dead mark"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, version, err := store.Decode("grant", "somewhere", []byte(tc.value))
			if tc.why == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if diff := cmp.Diff(tc.want, tok, cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" {
					t.Errorf("token mismatch (-want +got):\n%s", diff)
				}
				if version != tc.version {
					t.Errorf("version = %d, want %d", version, tc.version)
				}
				for k, want := range tc.extra {
					if diff := cmp.Diff(want, tok.Extra(k)); diff != "" {
						t.Errorf("Extra(%q) mismatch (-want +got):\n%s", k, diff)
					}
				}
				return
			}
			if tok != nil || version != 0 {
				t.Errorf("Decode returned %v, %d with its error", tok, version)
			}
			var ce *store.CorruptTokenError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode = %v, want a *CorruptTokenError", err)
			}
			if ce.Key != "grant" || ce.Location != "somewhere" {
				t.Errorf("CorruptTokenError{Key: %q, Location: %q}, want %q, %q", ce.Key, ce.Location, "grant", "somewhere")
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
}

func TestEncodeStoredToken(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// response is a token with the Extra of a JSON token response.
	response := (&oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Expiry: exp, ExpiresIn: 3600}).
		WithExtra(map[string]any{"access_token": "at", "token_type": "Bearer", "refresh_token": "rt", "expires_in": 3600.0,
			"id_token": "eyJ.x.y", "scope": "openid email", "instance_url": "https://acme.my.salesforce.com",
			"refresh_token_expires_in": 15552000.0, "refresh_expiry": "2030-07-01T03:04:05Z", "o": map[string]any{"a": []any{true, nil}}})
	// Members of 64 KiB, names and values: "big" just fits, "bigger" does not.
	big := strings.Repeat("b", 64<<10-len("big")-2)
	bigger := strings.Repeat("b", 64<<10-len("bigger")-1)
	tests := []struct {
		name    string
		tok     *oauth2.Token
		version uint64
		want    string         // the JSON; "" when an error is expected
		extra   map[string]any // the Extra values of the token decoded from it
	}{
		{"complete", (&oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
			Expiry: exp, ExpiresIn: 60}).WithExtra(map[string]any{"id_token": "x"}), 5,
			`{"version":5,"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2030-01-02T03:04:05Z","expires_in":60,"extra":{"id_token":"x"}}`,
			map[string]any{"id_token": "x"}},
		{"response members", response, 2,
			`{"version":2,"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2030-01-02T03:04:05Z","expires_in":3600,` +
				`"refresh_expiry":"2030-07-01T03:04:05Z","extra":{"id_token":"eyJ.x.y","instance_url":"https://acme.my.salesforce.com",` +
				`"o":{"a":[true,null]},"refresh_token_expires_in":15552000,"scope":"openid email"}}`,
			map[string]any{"id_token": "eyJ.x.y", "instance_url": "https://acme.my.salesforce.com", "scope": "openid email",
				"o": map[string]any{"a": []any{true, nil}}, "refresh_token_expires_in": 15552000.0,
				"refresh_expiry": "2030-07-01T03:04:05Z", "access_token": nil, "expires_in": nil}},
		{"form-encoded response", (&oauth2.Token{AccessToken: "at"}).WithExtra(url.Values{"access_token": {"at"},
			"scope": {"repo"}, "refresh_token_expires_in": {"15552000"}, "refresh_expiry": {"2030-07-01T03:04:05Z"}}), 1,
			`{"version":1,"access_token":"at","refresh_expiry":"2030-07-01T03:04:05Z","extra":{"refresh_token_expires_in":15552000,"scope":"repo"}}`,
			map[string]any{"scope": "repo", "refresh_token_expires_in": 15552000.0, "refresh_expiry": "2030-07-01T03:04:05Z"}},
		{"64 KiB of members", (&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"big": big}), 1,
			`{"version":1,"access_token":"at","extra":{"big":"` + big + `"}}`, map[string]any{"big": big}},
		{"a member past 64 KiB", (&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"bigger": bigger, "id_token": "x"}), 1,
			`{"version":1,"access_token":"at","extra":{"id_token":"x"}}`, map[string]any{"bigger": nil, "id_token": "x"}},
		{"a member without JSON", (&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"nan": math.NaN(), "f": func() {}}), 1,
			`{"version":1,"access_token":"at"}`, nil},
		{"access token only", &oauth2.Token{AccessToken: "at"}, 1, `{"version":1,"access_token":"at"}`, nil},
		{"refresh token only", &oauth2.Token{RefreshToken: "rt"}, 1, `{"version":1,"refresh_token":"rt"}`, nil},
		{"nil", nil, 1, "", nil},
		{"version 0", &oauth2.Token{AccessToken: "at"}, 0, "", nil},
		{"no token", &oauth2.Token{TokenType: "Bearer"}, 1, "", nil},
		{"unencodable expiry", &oauth2.Token{AccessToken: "at", Expiry: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, 1, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := store.Encode(tc.tok, tc.version)
			if tc.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "oauth2refresh: encoding stored token: ") {
					t.Errorf("Encode = %s, %v; want an oauth2refresh: encoding stored token: error", b, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s", diff)
			}
			// What is encoded decodes to the same token, with the Extra values kept.
			got, version, err := store.Decode("k", "", b)
			if err != nil {
				t.Fatalf("Decode of what Encode wrote: %v", err)
			}
			want := &oauth2.Token{AccessToken: tc.tok.AccessToken, TokenType: tc.tok.TokenType,
				RefreshToken: tc.tok.RefreshToken, Expiry: tc.tok.Expiry, ExpiresIn: tc.tok.ExpiresIn}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if version != tc.version {
				t.Errorf("version = %d, want %d", version, tc.version)
			}
			for k, want := range tc.extra {
				if diff := cmp.Diff(want, got.Extra(k)); diff != "" {
					t.Errorf("decoded Extra(%q) mismatch (-want +got):\n%s", k, diff)
				}
			}
		})
	}
}

func ExampleDecode() {
	b, err := store.Encode(&oauth2.Token{AccessToken: "at", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", b)

	tok, version, err := store.Decode("tenant-42", "example", b)
	fmt.Println(tok.RefreshToken, tok.Expiry, version, err)

	_, _, err = store.Decode("tenant-42", "example", b[:len(b)-5])
	fmt.Println(err)
	// Output:
	// {"version":1,"access_token":"at","refresh_token":"rt","expiry":"2030-01-02T03:04:05Z"}
	// rt 2030-01-02 03:04:05 +0000 UTC 1 <nil>
	// oauth2refresh: stored token for key "tenant-42" is corrupt (example): truncated JSON (81 bytes)
}

// FuzzDecodeStoredToken: whatever a store holds, Decode returns a token that
// Encode writes back to the same token and version, or a *CorruptTokenError.
func FuzzDecodeStoredToken(f *testing.F) {
	f.Add([]byte(`{"version":1,"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2030-01-01T00:00:00Z","expires_in":60}`))
	f.Add([]byte(`{"version": 18446744073709551615, "refresh_token": "rt"}`))
	f.Add([]byte(`{"version": 1, "access_token": "at", "expiry": "2030-01-01T00:00:00+02:00"}`))
	f.Add([]byte(`{"version": 1, "access_token": "at"`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version": 2, "dead": {"reason": "invalid_grant", "at": "2030-01-01T00:00:00+02:00"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, version, err := store.Decode("k", "", b)
		if err != nil {
			var ce *store.CorruptTokenError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode = %v, want a *CorruptTokenError", err)
			}
			return
		}
		again, err := store.Encode(tok, version)
		if err != nil {
			t.Fatalf("Encode of a decoded token: %v", err)
		}
		tok2, version2, err := store.Decode("k", "", again)
		if err != nil {
			t.Fatalf("Decode of what Encode wrote: %v", err)
		}
		if diff := cmp.Diff(tok, tok2, cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" || version2 != version {
			t.Errorf("token changed by an encode and a decode, version %d → %d (-first +second):\n%s", version, version2, diff)
		}
		// The Extra values (and a dead mark) too: the encoding of the second is the first's.
		if again2, err := store.Encode(tok2, version2); err != nil || string(again2) != string(again) {
			t.Errorf("encoding changed by a decode: %s, then %s (%v)", again, again2, err)
		}
	})
}

func TestStoredDeadMark(t *testing.T) {
	// A dead mark is written as the "dead" member alone and read back as one (the oracle is
	// the JSON of the format, written out here); a token that merely has response members
	// named "dead" or "oauth2refresh.dead" stays a token, its members in "extra".
	const mark = `{"version":9,"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"}}`
	tests := []struct {
		name, value string
		want        string // Encode of the decoded token, version 9
		dead        bool   // whether the decoded token is a dead mark
	}{
		{"dead mark", `{"version":4,"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"}}`, mark, true},
		{"dead mark without time", `{"version":4,"dead":{"reason":"revoked"}}`, `{"version":9,"dead":{"reason":"revoked"}}`, true},
		{"unknown reason, members ignored", `{"version":4,"dead":{"reason":"some_future_reason","at":"2030-01-02T03:04:05Z","x":1}}`,
			`{"version":9,"dead":{"reason":"some_future_reason","at":"2030-01-02T03:04:05Z"}}`, true},
		{"dead mark with tokens", `{"version":4,"access_token":"at","refresh_token":"rt","extra":{"id_token":"x"},"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"}}`,
			mark, true},
		{"response members named dead",
			`{"version":4,"access_token":"at","refresh_token":"rt","extra":{"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"},"oauth2refresh.dead":{"reason":"invalid_grant"}}}`,
			`{"version":9,"access_token":"at","refresh_token":"rt","extra":{"dead":{"at":"2030-01-02T03:04:05Z","reason":"invalid_grant"},"oauth2refresh.dead":{"reason":"invalid_grant"}}}`,
			false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := store.Decode("grant", "somewhere", []byte(tc.value))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if dead := tok.AccessToken == "" && tok.RefreshToken == ""; dead != tc.dead {
				t.Errorf("decoded token without tokens: %v, want %v", dead, tc.dead)
			}
			b, err := store.Encode(tok, 9)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
