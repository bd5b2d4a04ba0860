// Package conformance holds oauth2refresh's proof against servers it did not write: tests
// that refresh through a real, independently written OAuth 2.0 authorization server
// (github.com/ory/fosite, run in-process by the authserver package) and a suite of real
// providers' documented token responses.
//
// It is a module of its own so that the core module depends on golang.org/x/oauth2 alone.
// Run it from the repository root with:
//
//	go -C conformance test -race ./...
package conformance
