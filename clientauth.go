package oauth2refresh

// clientauth.go makes the client assertions of RFC 7523 §2.2 that AuthPrivateKeyJWT and
// AuthClientSecretJWT send: the ClientAssertion interface, its ready implementations, and the
// JWS signing they need, with the standard library (signing only, never parsing).

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"time"
)

// jwtBearer is the client_assertion_type of a JWT client assertion (RFC 7523 §2.2).
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAssertion makes the client assertion of AuthPrivateKeyJWT and AuthClientSecretJWT
// (RFC 7523 §2.2). Assertion is called for every request, never cached, possibly from many
// goroutines at once, under the request's deadline.
type ClientAssertion interface {
	Assertion(ctx context.Context, r AssertionRequest) (string, error)
}

// AssertionRequest describes the request an assertion authenticates.
type AssertionRequest struct {
	// ClientID is the Endpoint's ClientID: the iss and sub.
	ClientID string
	// TokenURL is the Endpoint's TokenURL: the default aud.
	TokenURL string
	// Now is the system clock's time, even under WithClock: the server judges iat and exp.
	Now time.Time
}

// AssertionFunc is a ClientAssertion made of a function.
type AssertionFunc func(ctx context.Context, r AssertionRequest) (string, error)

// Assertion returns f(ctx, r).
func (f AssertionFunc) Assertion(ctx context.Context, r AssertionRequest) (string, error) {
	return f(ctx, r)
}

// AssertionFile is a ClientAssertion read for every request from the file it names, trimmed:
// a token another process keeps fresh, such as a Kubernetes projected token or
// AZURE_FEDERATED_TOKEN_FILE. A file that is missing, empty, not regular or over 64 KiB, or a
// read past the request's deadline, is an *fs.PathError that never shows the content.
type AssertionFile string

// maxAssertionFile is the size of the largest file an AssertionFile reads; workload identity
// tokens are a few KiB. The file must be a regular file (symbolic links are followed, as a
// Kubernetes projected volume has them): a FIFO, a device or a directory is refused at once,
// without waiting for a writer, and a larger file without reading it. errors.Is(err,
// fs.ErrNotExist) holds for a missing file, errors.Is(err, context.DeadlineExceeded) for a
// read that outlived the deadline; no request is sent then.
const maxAssertionFile = 64 << 10

// Assertion reads the file.
func (f AssertionFile) Assertion(ctx context.Context, _ AssertionRequest) (string, error) {
	// The read runs on a goroutine of its own so that a read that hangs (a stalled network
	// file system) gives up at ctx's end; the read then finishes on its own.
	if err := context.Cause(ctx); err != nil {
		return "", &fs.PathError{Op: "read", Path: string(f), Err: err}
	}
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := readAssertionFile(string(f))
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		return "", &fs.PathError{Op: "read", Path: string(f), Err: context.Cause(ctx)}
	}
}

// readAssertionFile reads the assertion of an AssertionFile from the file name. It opens it
// without blocking (openNonblock: a FIFO with no writer would block in open(2)), and reads it
// only if it is a regular file of at most maxAssertionFile bytes, no more than that many
// should it grow meanwhile.
func readAssertionFile(name string) (string, error) {
	file, err := os.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return "", err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return "", err
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file (mode %v)", fi.Mode().Type())}
	case fi.Size() > maxAssertionFile:
		return "", errTooLarge(name)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxAssertionFile+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > maxAssertionFile:
		return "", errTooLarge(name)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s, nil
	}
	return "", &fs.PathError{Op: "read", Path: name, Err: errors.New("file is empty")}
}

// errTooLarge is the error of an AssertionFile larger than maxAssertionFile.
func errTooLarge(name string) error {
	return &fs.PathError{Op: "read", Path: name, Err: errors.New("file is larger than 64 KiB, the most an assertion file may hold")}
}

// defaultLifetime is the lifetime of a JWTAssertion whose Lifetime is zero (or negative),
// and of the assertions of AuthClientSecretJWT. The jti (newClaims) is rand.Text: at least
// 128 random bits from crypto/rand. This is private_key_jwt (OpenID Connect Core §9) as
// Microsoft Entra ID (certificate credentials, with x5t#S256, RFC 7515 §4.1.8), Okta, Auth0
// and ATProto expect it; some servers want their issuer as the aud.
const defaultLifetime = 2 * time.Minute

// JWTAssertion is a ClientAssertion that signs a new JWT (RFC 7523 §3) for each request:
// iss and sub the client id, aud Audience, a random jti, iat and nbf now, exp Lifetime later.
type JWTAssertion struct {
	// Key signs: RSA, ECDSA P-256, Ed25519, or a crypto.Signer of one (a KMS key).
	Key crypto.Signer
	// Algorithm is RS256 or PS256 for RSA, ES256, or EdDSA; empty picks by the key.
	Algorithm string
	// KeyID, if set, is the "kid" header.
	KeyID string
	// Certificate, if set, is Key's: its SHA-256 goes in "x5t#S256" (Microsoft Entra).
	Certificate *x509.Certificate
	// Audience is the aud; empty means the token URL.
	Audience string
	// Lifetime defaults to two minutes; Auth0 refuses more than five.
	Lifetime time.Duration
}

// Assertion signs a new assertion for r.
func (a JWTAssertion) Assertion(_ context.Context, r AssertionRequest) (string, error) {
	if a.Key == nil {
		return "", errors.New("JWTAssertion has no Key")
	}
	alg, err := keyAlg(a.Key, a.Algorithm)
	if err != nil {
		return "", err
	}
	h := jwsHeader{Alg: alg, Typ: "JWT", Kid: a.KeyID}
	if a.Certificate != nil {
		sum := sha256.Sum256(a.Certificate.Raw)
		h.X5tS256 = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return signJWT(h, newClaims(r, a.Audience, a.Lifetime), signer(a.Key, alg))
}

// keyAlg returns the JWS "alg" for key: alg, checked against the key's type, or when empty
// RS256, ES256 or EdDSA by the key's type.
func keyAlg(key crypto.Signer, alg string) (string, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if alg == "" {
			alg = "RS256"
		}
		if alg != "RS256" && alg != "PS256" {
			return "", fmt.Errorf("algorithm %q does not fit an RSA key", alg)
		}
	case *ecdsa.PublicKey:
		if alg == "" {
			alg = "ES256"
		}
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return "", fmt.Errorf("algorithm %q does not fit an ECDSA %s key", alg, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if alg == "" {
			alg = "EdDSA"
		}
		if alg != "EdDSA" {
			return "", fmt.Errorf("algorithm %q does not fit an Ed25519 key", alg)
		}
	default:
		return "", fmt.Errorf("unsupported key type %T", k)
	}
	return alg, nil
}

// signer returns the JWS signature function of alg (RFC 7518 §3, RFC 8037 §3.1) with key, as
// signJWT wants it; alg is one keyAlg returned for key.
func signer(key crypto.Signer, alg string) func(in []byte) ([]byte, error) {
	return func(in []byte) ([]byte, error) {
		digest := sha256.Sum256(in)
		switch alg {
		case "RS256":
			return key.Sign(rand.Reader, digest[:], crypto.SHA256)
		case "PS256":
			return key.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		case "EdDSA":
			return key.Sign(rand.Reader, in, crypto.Hash(0))
		}
		// ES256 (RFC 7518 §3.4): R and S as two 32-byte big-endian numbers, not ASN.1.
		der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		var sig struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 || sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
			return nil, errors.New("ECDSA signer returned a malformed signature")
		}
		out := make([]byte, 64)
		sig.R.FillBytes(out[:32])
		sig.S.FillBytes(out[32:])
		return out, nil
	}
}

// secretJWT is the assertion of client_secret_jwt (OpenID Connect Core §9): a JWTAssertion's
// claims, with aud the token URL, signed HS256 (RFC 7518 §3.2) with the client secret, which
// is at least minSecretJWTKey bytes long.
type secretJWT string

// minSecretJWTKey is the shortest client secret client_secret_jwt signs with: RFC 7518 §3.2
// requires an HS256 key of at least 256 bits (the size of the hash output).
const minSecretJWTKey = 256 / 8

func (s secretJWT) Assertion(_ context.Context, r AssertionRequest) (string, error) {
	return signJWT(jwsHeader{Alg: "HS256", Typ: "JWT"}, newClaims(r, "", 0), func(in []byte) ([]byte, error) {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write(in)
		return mac.Sum(nil), nil
	})
}

// jwsHeader is the JOSE header of an assertion (RFC 7515 §4.1).
type jwsHeader struct {
	Alg     string `json:"alg"`
	Typ     string `json:"typ"`
	Kid     string `json:"kid,omitempty"`
	X5tS256 string `json:"x5t#S256,omitempty"`
}

// jwtClaims are the claims of an assertion (RFC 7523 §3).
type jwtClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Jti string `json:"jti"`
	Iat int64  `json:"iat"`
	Nbf int64  `json:"nbf"`
	Exp int64  `json:"exp"`
}

// newClaims returns the claims of an assertion for r, with a new jti.
func newClaims(r AssertionRequest, aud string, lifetime time.Duration) jwtClaims {
	if aud == "" {
		aud = r.TokenURL
	}
	if lifetime <= 0 {
		lifetime = defaultLifetime
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	return jwtClaims{Iss: r.ClientID, Sub: r.ClientID, Aud: aud, Jti: rand.Text(),
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix()}
}

// signJWT returns the JWS compact serialization (RFC 7515 §7.1) of claims under h, signed by
// sign. h and claims are structs of strings, numbers and json.RawMessage: they always encode.
func signJWT(h, claims any, sign func(signingInput []byte) ([]byte, error)) (string, error) {
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	in := enc.AppendEncode(append(enc.AppendEncode(nil, hb), '.'), cb)
	sig, err := sign(in)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return string(enc.AppendEncode(append(in, '.'), sig)), nil
}

// assertion returns the client assertion of one token request authenticated with m, from
// e.Assertion, or made with the client secret for AuthClientSecretJWT. It is dated by the
// system clock, never a TokenSource's (see AssertionRequest.Now).
func (e *Endpoint) assertion(ctx context.Context, m AuthMethod) (string, error) {
	a := e.Assertion
	switch {
	case a != nil:
	case m == AuthPrivateKeyJWT:
		return "", fmt.Errorf("%w: private_key_jwt needs an Assertion", ErrInvalidEndpoint)
	case e.ClientSecret == "":
		return "", fmt.Errorf("%w: client_secret_jwt needs a ClientSecret or an Assertion", ErrInvalidEndpoint)
	case len(e.ClientSecret) < minSecretJWTKey:
		return "", fmt.Errorf("%w: client_secret_jwt needs a ClientSecret of at least 32 bytes, the 256 bits of an HS256 key (RFC 7518 §3.2)", ErrInvalidEndpoint)
	default:
		a = secretJWT(e.ClientSecret)
	}
	s, err := a.Assertion(ctx, AssertionRequest{ClientID: e.ClientID, TokenURL: e.TokenURL, Now: time.Now()})
	if err == nil && s == "" {
		err = errors.New("empty assertion")
	}
	if err != nil {
		return "", fmt.Errorf("oauth2refresh: making the client assertion: %w", err)
	}
	return s, nil
}
