package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/marks"
	"github.com/tokenkit/oauth2refresh/internal/quote"
	"golang.org/x/oauth2"
)

// storedToken is the JSON object of the stored-token format (see Encode).
type storedToken struct {
	Version      uint64    `json:"version"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	ExpiresIn    int64     `json:"expires_in,omitempty"`
	DPoPJKT      string    `json:"dpop_jkt,omitempty"`
	// RefreshExpiry is oauth2refresh.RefreshTokenExpiry of the token; Extra the rest of its Extra
	// values (see Encode), json.RawMessage values when encoding.
	RefreshExpiry time.Time      `json:"refresh_expiry,omitzero"`
	Extra         map[string]any `json:"extra,omitempty"`
	// Dead is the dead mark of a token made by marks.DeadToken, alone in the object but for
	// Version.
	Dead *storedDead `json:"dead,omitempty"`
}

// storedDead is the "dead" member of the stored-token format: a grant marked dead.
type storedDead struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at,omitzero"`
}

// maxStoredExtra bounds the "extra" member of the stored-token format.
const maxStoredExtra = 64 << 10

// notExtra are the members of a token response that the stored-token format keeps elsewhere
// than in "extra", or not at all (the tokens are not stored twice).
var notExtra = map[string]bool{"access_token": true, "token_type": true, "refresh_token": true,
	"expires_in": true, "dpop_jkt": true, marks.RefreshExpiryKey: true}

// Encode returns t with the given version in the stored-token format, the one every
// Store of this repository keeps a token in (filestore.Store's files, the Redis store's values, the
// PostgreSQL store's token column): one JSON object, without a trailing newline,
//
//	{"version":3,"access_token":"…","token_type":"Bearer","refresh_token":"…","expiry":"2030-01-02T03:04:05Z","expires_in":3600,
//	 "refresh_expiry":"2030-07-01T03:04:05Z","extra":{"id_token":"…","scope":"openid email"}}
//
// version is a number of at least 1 that grows as the grant is saved again: filestore.Store counts
// the saves, the Redis and PostgreSQL stores write the fencing number of the lease that saved.
// The next members are those of oauth2.Token, each left out when empty; expiry is RFC 3339. A
// DPoP-bound token (see oauth2refresh.Endpoint.DPoP) also has "dpop_jkt", the RFC 7638 thumbprint
// of its key, from t.Extra("dpop_jkt"); one whose refresh token expires (see
// oauth2refresh.RefreshTokenExpiry) has "refresh_expiry", RFC 3339. "extra" holds t's other Extra
// values, the members of the token response such as id_token, scope or Salesforce's instance_url,
// but for access_token, refresh_token, token_type and expires_in, kept as fields: a member is kept
// in the order of the names while the names and JSON values kept add up to at most 64 KiB, and left
// out when it would take them past that or has no JSON encoding. Readers that do not know a member
// ignore it.
//
// A grant found dead (see oauth2refresh.DeadGrantError) is stored as a dead mark instead of a
// token: the version and a "dead" member with the reason (invalid_grant, refresh_token_expired,
// revoked) and, RFC 3339, when the grant was found dead,
//
//	{"version":8,"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"}}
//
// The TokenSource hands Stores a dead mark as a token without access or refresh token whose
// Extra holds a value of an unexported type, which no token response can produce (a response
// member named "dead" is one of "extra" like any other); Encode writes it so, and
// Decode reads it back into one. Stores keep it as any token and need not know it.
//
// Encode fails when version is 0, or when t is nil or is neither a dead mark nor
// has an access token or a refresh token: Decode would refuse what it wrote. Its
// errors never quote the token.
func Encode(t *oauth2.Token, version uint64) ([]byte, error) {
	var dead *storedDead
	if m := marks.DeadOf(t); m != nil {
		dead = &storedDead{Reason: m.Reason, At: m.At}
	}
	switch {
	case t == nil:
		return nil, errors.New("oauth2refresh: encoding stored token: nil token")
	case version == 0:
		return nil, errors.New("oauth2refresh: encoding stored token: version 0")
	case dead != nil:
		if dead.Reason == "" {
			return nil, errors.New("oauth2refresh: encoding stored token: dead mark without a reason")
		}
		b, err := json.Marshal(storedToken{Version: version, Dead: dead})
		if err != nil {
			return nil, fmt.Errorf("oauth2refresh: encoding stored token: %w", err)
		}
		return b, nil
	case t.AccessToken == "" && t.RefreshToken == "":
		return nil, errors.New("oauth2refresh: encoding stored token: neither access token nor refresh token")
	}
	st := storedToken{
		Version:      version,
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry,
		ExpiresIn:    t.ExpiresIn,
	}
	st.DPoPJKT, _ = t.Extra("dpop_jkt").(string)
	st.RefreshExpiry = oauth2refresh.RefreshTokenExpiry(t)
	st.Extra = keptExtra(t, maxStoredExtra)
	b, err := json.Marshal(st)
	if err != nil {
		// Only an expiry outside years 0–9999 gets here.
		return nil, fmt.Errorf("oauth2refresh: encoding stored token: %w", err)
	}
	return b, nil
}

// Decode reads a token in the stored-token format (see Encode) and
// returns it with its version. Its Extra values are the members of "extra", "dpop_jkt" and
// "refresh_expiry" (see oauth2refresh.RefreshTokenExpiry); a value with a "dead" member is returned
// as the dead mark it holds, whatever else it holds. Members it does not know are ignored, and
// whitespace around the object is allowed. Stores use it for every value they read, so that a
// damaged one is reported alike whatever the store: a *CorruptTokenError with the key and
// location given, whose Err says what is wrong (empty, truncated JSON, invalid JSON at some
// byte, JSON of the wrong shape, data after the object, no version, neither access token nor
// refresh token nor dead mark, a dead mark without a reason) and never quotes the value, which
// may hold secrets.
func Decode(key, location string, b []byte) (*oauth2.Token, uint64, error) {
	st, err := decodeStoredToken(b)
	if err != nil {
		return nil, 0, &CorruptTokenError{Key: key, Location: location, Err: err}
	}
	if st.Dead != nil {
		return marks.DeadToken(st.Dead.Reason, st.Dead.At), st.Version, nil
	}
	t := &oauth2.Token{
		AccessToken:  st.AccessToken,
		TokenType:    st.TokenType,
		RefreshToken: st.RefreshToken,
		Expiry:       st.Expiry,
		ExpiresIn:    st.ExpiresIn,
	}
	extra := st.Extra
	for k, v := range map[string]string{"dpop_jkt": st.DPoPJKT, marks.RefreshExpiryKey: marks.FormatTime(st.RefreshExpiry)} {
		if v != "" {
			if extra == nil {
				extra = map[string]any{}
			}
			extra[k] = v
		}
	}
	if extra != nil {
		t = t.WithExtra(extra)
	}
	return t, st.Version, nil
}

// CorruptTokenError reports a stored token that cannot be decoded: a truncated file, a value
// written by something else. The store leaves it as it is, for a person to look at; it is not
// overwritten, and the grant cannot be refreshed through the store until it is repaired or
// removed (then a TokenSource given a token of its own saves that one).
type CorruptTokenError struct {
	// Key is the grant's key.
	Key string
	// Location says where the value is, such as the file's path.
	Location string
	// Err says what is wrong with it. It never quotes the value, which may hold secrets.
	Err error
}

func (e *CorruptTokenError) Error() string {
	s := "oauth2refresh: stored token for key " + quote.Key(e.Key) + " is corrupt"
	if e.Location != "" {
		s += " (" + e.Location + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns e.Err.
func (e *CorruptTokenError) Unwrap() error { return e.Err }

// keptExtra returns the Extra values of t that the stored-token format keeps in "extra", as
// json.RawMessage values: those not in notExtra that have a JSON encoding, in the order of
// their names while the names and values kept add up to at most limit bytes; nil for none. A
// dead mark's value is not one of them.
func keptExtra(t *oauth2.Token, limit int) map[string]any {
	var m map[string]any
	n := 0
	for _, k := range extraKeys(t) {
		if _, mark := t.Extra(k).(*marks.Dead); mark {
			continue
		}
		if b, err := json.Marshal(t.Extra(k)); err == nil && !notExtra[k] && n+len(k)+len(b) <= limit {
			if m == nil {
				m = map[string]any{}
			}
			m[k], n = json.RawMessage(b), n+len(k)+len(b)
		}
	}
	return m
}

// extraKeys returns the names of t's Extra values, sorted. oauth2.Token keeps them in an
// unexported field, a map when the token came from a response: only the map's keys are read,
// by reflection, and the values through Token.Extra. A golang.org/x/oauth2 that renamed the
// field would make it return none (TestEncodeStoredToken would tell).
func extraKeys(t *oauth2.Token) []string {
	raw := reflect.ValueOf(t).Elem().FieldByName("raw")
	if raw.Kind() == reflect.Interface {
		raw = raw.Elem()
	}
	if raw.Kind() != reflect.Map || raw.Type().Key().Kind() != reflect.String {
		return nil
	}
	keys := make([]string, 0, raw.Len())
	for _, k := range raw.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	return keys
}

// decodeStoredToken decodes and checks b.
func decodeStoredToken(b []byte) (*storedToken, error) {
	var st storedToken
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&st); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("empty")
		case errors.Is(err, io.ErrUnexpectedEOF):
			// The input ended inside the object: a write that was cut short.
			return nil, fmt.Errorf("truncated JSON (%d bytes)", len(b))
		case errors.As(err, &syn):
			return nil, fmt.Errorf("invalid JSON at byte %d of %d", syn.Offset, len(b))
		case errors.As(err, &typ) && typ.Field != "":
			// Field is a path of member names: safe to show, unlike typ.Value.
			return nil, fmt.Errorf("JSON of the wrong shape: member %s", typ.Field)
		default:
			// Not an object, or an expiry that is not an RFC 3339 time.
			return nil, errors.New("JSON of the wrong shape")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON at byte %d of %d: data after the object", dec.InputOffset(), len(b))
	}
	switch {
	case st.Version == 0:
		return nil, errors.New("no version")
	case st.Dead != nil && st.Dead.Reason == "":
		return nil, errors.New("dead mark without a reason")
	case st.Dead == nil && st.AccessToken == "" && st.RefreshToken == "":
		return nil, errors.New("neither access token nor refresh token nor dead mark")
	}
	return &st, nil
}
