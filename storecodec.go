package oauth2refresh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/oauth2"
)

// storedToken is the JSON object of the stored-token format (see EncodeStoredToken).
type storedToken struct {
	Version      uint64    `json:"version"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	ExpiresIn    int64     `json:"expires_in,omitempty"`
	DPoPJKT      string    `json:"dpop_jkt,omitempty"`
}

// EncodeStoredToken returns t with the given version in the stored-token format, the one every
// Store of this repository keeps a token in (FileStore's files, the Redis store's values, the
// PostgreSQL store's token column): one JSON object, without a trailing newline,
//
//	{"version":3,"access_token":"…","token_type":"Bearer","refresh_token":"…","expiry":"2030-01-02T03:04:05Z","expires_in":3600}
//
// version is a number of at least 1 that grows as the grant is saved again: FileStore counts
// the saves, the Redis and PostgreSQL stores write the fencing number of the lease that saved.
// The other members are those of oauth2.Token (Extra is not kept), each left out when empty;
// expiry is RFC 3339. A DPoP-bound token (see Endpoint.DPoP) also has "dpop_jkt", the RFC 7638
// thumbprint of its key, from t.Extra("dpop_jkt"); readers that do not know it ignore it. EncodeStoredToken fails when version is 0, or when t is nil or has
// neither an access token nor a refresh token: DecodeStoredToken would refuse what it wrote.
// Its errors never quote the token.
func EncodeStoredToken(t *oauth2.Token, version uint64) ([]byte, error) {
	switch {
	case t == nil:
		return nil, errors.New("oauth2refresh: encoding stored token: nil token")
	case version == 0:
		return nil, errors.New("oauth2refresh: encoding stored token: version 0")
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
	b, err := json.Marshal(st)
	if err != nil {
		// Only an expiry outside years 0–9999 gets here.
		return nil, fmt.Errorf("oauth2refresh: encoding stored token: %w", err)
	}
	return b, nil
}

// DecodeStoredToken reads a token in the stored-token format (see EncodeStoredToken) and
// returns it with its version; a "dpop_jkt" member is the token's Extra("dpop_jkt"). Members it
// does not know are ignored, and whitespace around the
// object is allowed. Stores use it for every value they read, so that a damaged one is reported
// alike whatever the store: a *CorruptTokenError with the key and location given, whose Err
// says what is wrong (empty, truncated JSON, invalid JSON at some byte, JSON of the wrong
// shape, data after the object, no version, neither access token nor refresh token) and never
// quotes the value, which may hold secrets.
func DecodeStoredToken(key, location string, b []byte) (*oauth2.Token, uint64, error) {
	st, err := decodeStoredToken(b)
	if err != nil {
		return nil, 0, &CorruptTokenError{Key: key, Location: location, Err: err}
	}
	t := &oauth2.Token{
		AccessToken:  st.AccessToken,
		TokenType:    st.TokenType,
		RefreshToken: st.RefreshToken,
		Expiry:       st.Expiry,
		ExpiresIn:    st.ExpiresIn,
	}
	if st.DPoPJKT != "" {
		t = t.WithExtra(map[string]any{"dpop_jkt": st.DPoPJKT})
	}
	return t, st.Version, nil
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
	case st.AccessToken == "" && st.RefreshToken == "":
		return nil, errors.New("neither access token nor refresh token")
	}
	return &st, nil
}
