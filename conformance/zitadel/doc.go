// Package zitadel holds oauth2refresh's proof against a second, independently written
// authorization server: the OpenID Provider of github.com/zitadel/oidc/v3 (package op), run
// in-process on an httptest.Server with an in-memory storage written for the tests. It proves
// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9) on the
// refresh_token grant, next to the ory/fosite proof in the conformance module.
//
// It is a module of its own: zitadel/oidc requires newer OpenTelemetry and golang.org/x
// modules than fosite's graph in the conformance module, and one module for both would move
// fosite's dependencies. Run it from the repository root with:
//
//	go -C conformance/zitadel test -race ./...
package zitadel
